package dev.cloudsuite.interop.service;

import io.micrometer.observation.ObservationRegistry;
import io.micrometer.tracing.Span;
import io.micrometer.tracing.Tracer;
import jakarta.servlet.http.HttpServletRequest;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.cloud.client.loadbalancer.LoadBalanced;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.client.RestClient;
import org.springframework.web.client.RestClientResponseException;

/** The endpoints the Rust tests read. */
@RestController
public class InteropController {
  private final GreetingProperties greeting;
  private final RestClient restClient;
  private final Tracer tracer;

  public InteropController(
      GreetingProperties greeting, RestClient.Builder loadBalanced, Tracer tracer) {
    this.greeting = greeting;
    this.restClient = loadBalanced.build();
    this.tracer = tracer;
  }

  /** The trace this request runs in, as Brave continued or started it. */
  @GetMapping("/trace")
  public Map<String, String> trace() {
    Span span = tracer.currentSpan();
    Map<String, String> body = new LinkedHashMap<>();
    body.put("traceId", span == null ? "" : span.context().traceId());
    body.put("spanId", span == null ? "" : span.context().spanId());
    body.put("parentId", span == null ? "" : String.valueOf(span.context().parentId()));
    return body;
  }

  /** The current `greeting.message`. */
  @GetMapping(value = "/greeting", produces = "text/plain")
  public String greeting() {
    return greeting.getMessage();
  }

  /** The current `greeting.*` values as JSON (includes the decrypted secret). */
  @GetMapping("/greeting/all")
  public Map<String, String> all() {
    Map<String, String> body = new LinkedHashMap<>();
    body.put("message", greeting.getMessage());
    body.put("secret", greeting.getSecret());
    return body;
  }

  /** Calls `http://{service}/{rest}` through Spring Cloud LoadBalancer and returns its body. */
  @GetMapping("/call/{service}/**")
  public ResponseEntity<String> call(@PathVariable String service, HttpServletRequest request) {
    String prefix = "/call/" + service + "/";
    String uri = request.getRequestURI();
    String rest = uri.length() > prefix.length() ? uri.substring(prefix.length()) : "";
    try {
      String body = restClient.get().uri("http://" + service + "/" + rest).retrieve().body(String.class);
      return ResponseEntity.ok(body == null ? "" : body);
    } catch (RestClientResponseException e) {
      return ResponseEntity.status(e.getStatusCode()).body(e.getResponseBodyAsString());
    } catch (RuntimeException e) {
      return ResponseEntity.status(502).body(e.getClass().getSimpleName() + ": " + e.getMessage());
    }
  }

  /** The load-balanced RestClient builder. */
  @Configuration
  static class Clients {
    @Bean
    @LoadBalanced
    RestClient.Builder loadBalancedRestClientBuilder(ObservationRegistry observations) {
      // Observed, so its calls carry the trace headers.
      return RestClient.builder().observationRegistry(observations);
    }
  }
}
