//! A reference Spring application from `interop/spring` run with `java -jar`
//! for the duration of a test. Shared by the discovery-server and
//! config-server integration tests (each includes this file into its
//! `tests/support` module with `#[path]`), so both crates start the JVMs the
//! same way.
//!
//! The process is killed when the guard is dropped, also when the test
//! panics; its log is printed then, so a failure shows what Spring said.

use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// JVM flags that keep a Spring start short on a small CI machine.
const JVM_FLAGS: [&str; 3] = ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-Xshare:auto"];

/// How long a Spring application may take to start on a busy CI machine.
/// The argument that keeps the gateway jar as it is without Redis: Spring
/// Boot's Redis auto-configuration off, and with it SCG's Redis rate
/// limiter, route repository and Redis health (the jar has the Redis
/// starter for `api-gateway/tests/redis_routes.rs`).
pub(crate) const SCG_WITHOUT_REDIS: &str = "--spring.autoconfigure.exclude=org.springframework.boot.autoconfigure.data.redis.RedisAutoConfiguration,org.springframework.boot.autoconfigure.data.redis.RedisReactiveAutoConfiguration";

pub(crate) const JVM_START: Duration = Duration::from_secs(90);

/// The deadline of a whole Spring interop scenario.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(180);

/// Runs a Spring interop scenario, failing it when it outlives
/// the scenario deadline (three minutes).
pub(crate) async fn within_scenario_deadline(scenario: impl Future<Output = ()>) {
    tokio::time::timeout(SCENARIO_DEADLINE, scenario)
        .await
        .expect("Spring interop scenario deadline");
}

/// How many log lines a failing test prints.
const LOG_TAIL: usize = 80;

/// The jar of `module` built by `scripts/prereqs`:
/// `<workspace>/interop/spring/<module>/target/<module>.jar`.
pub(crate) fn spring_jar(module: &str) -> PathBuf {
    let jar = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../interop/spring")
        .join(module)
        .join("target")
        .join(format!("{module}.jar"));
    assert!(
        jar.is_file(),
        "Spring interop jar missing at {}: run scripts/prereqs (needs java and mvn)",
        jar.display()
    );
    jar
}

/// A running Spring Boot application; killed on drop.
pub(crate) struct SpringApp {
    name: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl SpringApp {
    /// Starts `java -jar <module>.jar` with `args` (Spring `--key=value`
    /// flags) after the shared JVM flags and
    /// `--spring.main.lazy-initialization=false`.
    pub(crate) fn start<I, S>(module: &str, args: I) -> SpringApp
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let jar = spring_jar(module);
        let mut cmd = Command::new("java");
        cmd.args(JVM_FLAGS)
            .arg("-jar")
            .arg(&jar)
            .arg("--spring.main.lazy-initialization=false")
            .arg("--spring.main.banner-mode=off")
            .args(args.into_iter().map(|a| a.as_ref().to_owned()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run java for {}: {e}", jar.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(collect_lines(out, log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(collect_lines(err, log.clone()));
        }
        SpringApp {
            name: module.to_owned(),
            child,
            log,
        }
    }

    /// The operating system's id of the JVM.
    pub(crate) fn pid(&self) -> u32 {
        self.child
            .id()
            .expect("the JVM has not been waited for yet")
    }

    /// The first log line that contains `needle`, waiting up to `within`.
    /// Panics (with the log) when the JVM exits or the deadline passes.
    pub(crate) async fn wait_for_log(&mut self, needle: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(line) = self.log.lock().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before logging {needle:?}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not log {needle:?} within {within:?}:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The HTTP port from Spring's `Tomcat started on port NNNN` line (the
    /// apps run with `--server.port=0`).
    pub(crate) async fn http_port(&mut self, within: Duration) -> u16 {
        self.logged_port("Tomcat started on port ", within).await
    }

    /// The port from the first `Netty started on port NNNN` line: a
    /// WebFlux app's (SCG's) server port, logged before its management
    /// port's.
    pub(crate) async fn netty_port(&mut self, within: Duration) -> u16 {
        self.logged_port("Netty started on port ", within).await
    }

    /// The number after `needle` in the first log line that has it.
    async fn logged_port(&mut self, needle: &str, within: Duration) -> u16 {
        let line = self.wait_for_log(needle, within).await;
        let rest = &line[line.find(needle).map_or(0, |i| i + needle.len())..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits
            .parse()
            .unwrap_or_else(|e| panic!("no port in {line:?}: {e}"))
    }

    /// Sends SIGTERM (a graceful Spring shutdown) and waits up to `within`
    /// for the JVM to exit.
    pub(crate) async fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -TERM {pid}: {status}");
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("waiting for {}: {e}", self.name),
            Err(_) => panic!(
                "{} did not exit within {within:?} of SIGTERM:\n{}",
                self.name,
                self.log_tail()
            ),
        }
    }

    /// Whether any log line so far contains `needle`.
    pub(crate) fn logged(&self, needle: &str) -> bool {
        self.log.lock().iter().any(|l| l.contains(needle))
    }

    /// The last lines of the log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let log = self.log.lock();
        let from = log.len().saturating_sub(LOG_TAIL);
        log[from..].join("\n")
    }
}

impl Drop for SpringApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} log (last lines) ----\n{}",
                self.name,
                self.log_tail()
            );
        }
        // kill_on_drop sends SIGKILL as well; starting it here means the JVM
        // is gone even if the runtime is shutting down.
        let _ = self.child.start_kill();
    }
}

async fn collect_lines<R: AsyncRead + Unpin>(stream: R, log: Arc<Mutex<Vec<String>>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.lock().push(line);
    }
}
