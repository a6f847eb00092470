//! Runs a discovery server inside this process on a free port, registers an
//! instance over HTTP as a Eureka client would, lists the applications, and
//! shuts the server down cleanly.
//!
//! `cargo run -p discovery-server --example discovery_embedded`

use discovery_server::{ServerConfig, run};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

type Error = Box<dyn std::error::Error + Send + Sync>;

const REGISTRATION: &str = r#"{"instance":{"instanceId":"localhost:greeter:8080",
  "hostName":"localhost","app":"GREETER","ipAddr":"127.0.0.1","status":"UP",
  "port":{"$":8080,"@enabled":"true"},"vipAddress":"greeter",
  "dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}}}"#;

#[tokio::main]
async fn main() -> Result<(), Error> {
    cloud_runtime::logging::init(cloud_runtime::logging::LogFormat::Text);

    // Port 0: the system picks a free port.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/eureka", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, ServerConfig::default(), async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{base}/apps/GREETER"))
        .header("Content-Type", "application/json")
        .body(REGISTRATION)
        .send()
        .await?;
    println!("register: {}", registered.status());

    let apps: serde_json::Value = client
        .get(format!("{base}/apps"))
        .header("Accept", "application/json")
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let listing = &apps["applications"];
    println!("apps__hashcode: {}", listing["apps__hashcode"]);
    for app in listing["application"].as_array().into_iter().flatten() {
        for instance in app["instance"].as_array().into_iter().flatten() {
            let field = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
            println!(
                "{}: {} at {}:{} is {}",
                field(&app["name"]),
                field(&instance["instanceId"]),
                field(&instance["ipAddr"]),
                instance["port"]["$"],
                field(&instance["status"])
            );
        }
    }

    // Deregister, then stop: in-flight requests finish, timers stop.
    let cancelled = client
        .delete(format!("{base}/apps/GREETER/localhost:greeter:8080"))
        .send()
        .await?;
    println!("cancel: {}", cancelled.status());
    let _ = stop.send(());
    server.await??;
    println!("server stopped");
    Ok(())
}
