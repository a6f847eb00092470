package dev.cloudsuite.interop.service;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;

/** A Spring Cloud client: registers with Eureka, imports config, calls peers by name. */
@SpringBootApplication
@ConfigurationPropertiesScan
public class ServiceApplication {
  public static void main(String[] args) {
    SpringApplication.run(ServiceApplication.class, args);
  }
}
