//! Shared by the integration tests: a server on a loopback port that stops
//! when dropped, and polling with a deadline.

#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use discovery_server::{Server, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, Lines};
use tokio::sync::oneshot;

/// A server running in-process on `127.0.0.1:0`.
pub(crate) struct Running {
    pub(crate) server: Server,
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub(crate) async fn start(config: ServerConfig) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::new(config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.clone().serve(listener, async {
            let _ = rx.await;
        }));
        Running {
            server,
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT/eureka/`
    pub(crate) fn eureka_url(&self) -> String {
        format!("http://{}/eureka/", self.addr)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `check` every 20 ms until it holds or `within` passes.
pub(crate) async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `STEP <rest>` lines that a driven client script prints on stdout;
/// any other output (client libraries log there too) is skipped.
pub(crate) struct Steps<R> {
    lines: Lines<BufReader<R>>,
}

impl<R: AsyncRead + Unpin> Steps<R> {
    pub(crate) fn new(stdout: R) -> Steps<R> {
        Steps {
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The text after `STEP ` of the next step line. Panics when `within`
    /// passes first or the process closes its stdout.
    pub(crate) async fn next(&mut self, within: Duration) -> String {
        let lines = &mut self.lines;
        tokio::time::timeout(within, async move {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("client exited before its next step");
                if let Some(rest) = line.strip_prefix("STEP ") {
                    return rest.to_owned();
                }
            }
        })
        .await
        .expect("client step deadline")
    }
}
