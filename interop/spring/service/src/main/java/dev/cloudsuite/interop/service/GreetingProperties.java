package dev.cloudsuite.interop.service;

import org.springframework.boot.context.properties.ConfigurationProperties;

/** `greeting.*` properties; rebound by Spring Cloud on /actuator/refresh. */
@ConfigurationProperties(prefix = "greeting")
public class GreetingProperties {
  private String message = "unset";
  private String secret = "unset";

  public String getMessage() {
    return message;
  }

  public void setMessage(String message) {
    this.message = message;
  }

  public String getSecret() {
    return secret;
  }

  public void setSecret(String secret) {
    this.secret = secret;
  }
}
