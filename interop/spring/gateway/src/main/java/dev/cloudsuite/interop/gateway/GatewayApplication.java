package dev.cloudsuite.interop.gateway;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/**
 * The reference Spring Cloud Gateway. It defines no routes itself: they all
 * come from the application.yml passed with --spring.config.additional-location.
 */
@SpringBootApplication
public class GatewayApplication {
  public static void main(String[] args) {
    SpringApplication.run(GatewayApplication.class, args);
  }
}
