//! A service's whole life against an in-process discovery server on a free
//! port: an upstream registers, a caller discovers it and calls it through
//! `lb://`, then both shut down (the upstream marks itself DOWN and cancels).
//!
//! `cargo run -p cloud-client --example service`

use std::time::Duration;

use cloud_client::discovery::DiscoveryClient;
use cloud_client::http::{HttpClientConfig, LbHttpClient};
use cloud_client::settings::ClientSettings;
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The registry.
    let registry = TcpListener::bind("127.0.0.1:0").await?;
    let eureka = format!("http://{}/eureka/", registry.local_addr()?);
    let (stop_registry, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(discovery_server::run(
        registry,
        discovery_server::ServerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));

    // An upstream service answering on its own port.
    let upstream = TcpListener::bind("127.0.0.1:0").await?;
    let port = upstream.local_addr()?.port();
    let app = axum::Router::new().route("/users/{id}", axum::routing::get(|| async { "alice" }));
    tokio::spawn(async move { axum::serve(upstream, app).await });

    let port = port.to_string();
    let settings = |name: &str, port: &str| {
        ClientSettings::from_properties([
            ("spring.application.name", name),
            ("server.port", port),
            ("eureka.client.service-url.defaultZone", eureka.as_str()),
            ("eureka.instance.hostname", "127.0.0.1"),
        ])
    };
    // Registers 127.0.0.1:<port> as USER-SERVICE.
    let users = DiscoveryClient::start(settings("user-service", &port)?).await?;

    let caller = DiscoveryClient::start(settings("checkout", "8080")?).await?;
    let mut changes = caller.subscribe("user-service");
    if caller.instances("user-service").is_empty() {
        tokio::time::timeout(Duration::from_secs(5), changes.changed()).await?;
    }
    println!(
        "user-service instances: {:?}",
        caller.instances("user-service")
    );

    let http = LbHttpClient::new(caller.clone(), HttpClientConfig::default())?;
    let body = http.get("lb://user-service/users/1").await?.text().await?;
    println!("lb://user-service/users/1 -> {body}");

    users.shutdown().await?;
    caller.shutdown().await?;
    let _ = stop_registry.send(());
    Ok(())
}
