//! The config server embedded in another program: start it in-process on
//! port 0 against the bundled native `config-repo/`, fetch `/foo/dev` like a
//! client would, print it, and shut down cleanly.
//!
//! ```text
//! cargo run -p config-server --example embedded
//! ```

use std::error::Error;
use std::time::Duration;

use config_server::Settings;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    cloud_runtime::logging::init(cloud_runtime::logging::LogFormat::Text);

    let settings = Settings {
        native_dirs: vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config-repo")],
        // Directories are read on each request; no background refresh needed.
        refresh_rate: 0,
        ..Settings::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(config_server::run(listener, settings, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let env: serde_json::Value = client
        .get(format!("{base}/foo/dev"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "GET {base}/foo/dev\n{}",
        serde_json::to_string_pretty(&env)?
    );

    // Graceful shutdown: the server drains and `run` returns.
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server).await???;
    Ok(())
}
