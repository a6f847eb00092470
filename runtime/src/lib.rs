//! What every process of the suite does the same way, written once: the
//! servers (`discovery-server`, `config-server`, `api-gateway`), the client
//! library and the demo services all start, serve, log, read their settings
//! and stop through this crate. It holds no business logic and no server of
//! its own.
//!
//! # Layout
//! - [`shutdown`]: SIGTERM and Ctrl-C to one cancellation token
//!   ([`shutdown::Shutdown`]), named open work for the drain log
//!   ([`shutdown::OpenWork`], [`shutdown::spawn_blocking`]), and
//!   [`shutdown::run_service`], which a binary's `main` calls: a drain
//!   deadline after which the process exits anyway.
//! - [`clock`]: the one [`clock::Clock`] trait (monotonic and epoch time),
//!   following tokio's paused time, and a manual clock for tests.
//! - [`duration`]: durations as Spring Boot writes them (`500`, `"10s"`,
//!   `"PT10S"`).
//! - [`prometheus`]: the Prometheus text format writer.
//! - [`gated`]: a future polled only after its own wake-up (a deadline or a
//!   shutdown signal beside a busy connection).
//! - [`stall`]: how long a stream has waited without progress, for the
//!   limits that end stalled transfers.
//! - [`percent`]: percent-escapes read strictly (`%` and two hex digits),
//!   and form-encoded query parts.
//! - [`shard`]: per-thread shards on their own cache lines, for state every
//!   worker writes, and `ShardedArc`, an `Arc` held through per-thread
//!   handles.
//! - With the default `service` feature:
//!   - [`properties`]: Java `.properties` text, as `java.util.Properties`
//!     and Spring Boot read it (documents split at `#---`);
//!   - [`settings`]: layering of defaults, `--config FILE` (YAML, Java
//!     `.properties` with `settings/properties.rs` turning list indices
//!     into lists, TOML, JSON), environment
//!     variables (Spring's relaxed names, through an injectable map) and
//!     flags, with errors that name the file or variable and the key;
//!   - [`logging`]: tracing setup (`RUST_LOG` filter; text on a terminal,
//!     JSON lines otherwise, or `--log-format`);
//!   - [`cli`]: the flags every binary shares;
//!   - [`serve`]: serving a router with connection limits (header-read,
//!     keep-alive and send timeouts, a connection cap, header size) and a
//!     drain; hyper's HTTP/1 and HTTP/2, or, for a service that asks
//!     (`RequestService::OWN_HTTP1`), our own HTTP/1 loop for requests
//!     without a body (`serve/h1.rs`);
//!   - [`auth`]: HTTP Basic auth as a tower layer;
//!   - [`error_body`]: Spring Boot's JSON error shape;
//!   - [`http2`]: whether a failed HTTP/2 request went unprocessed (and
//!     may be sent again whatever its method).
//! - With the `tls` feature: `serve::serve_tls_with_stats`, the same
//!   serving behind a rustls acceptor.
//! - With the `testing` feature (dev-dependencies only): `testing`,
//!   waiting on a condition with a deadline and throwaway git repositories.
//!
//! # Example
//! A service binary: flags, settings, logging, serve until SIGTERM, drain.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use clap::Parser;
//! use cloud_runtime::{cli::CommonArgs, logging, serve, settings::{Layers, ProcessEnvironment}, shutdown};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[arg(long)]
//!     port: Option<u16>,
//!     #[command(flatten)]
//!     common: CommonArgs,
//! }
//!
//! #[derive(Default, Serialize, Deserialize)]
//! #[serde(default)]
//! struct Settings { server: Server }
//! #[derive(Serialize, Deserialize)]
//! #[serde(default, rename_all = "kebab-case")]
//! struct Server { port: u16, #[serde(flatten)] limits: serve::ServeLimits }
//! impl Default for Server {
//!     fn default() -> Self { Server { port: 8080, limits: Default::default() } }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let args = Args::parse();
//!     logging::init(args.common.log_format);
//!     let settings: Settings = match Layers::new::<Settings>()
//!         .and_then(|l| l.optional_file(args.common.config.as_deref()))
//!         .map(|l| l.env(&ProcessEnvironment).set_some("server.port", args.port, "--port"))
//!         .and_then(|l| l.load())
//!     {
//!         Ok(s) => s,
//!         Err(e) => {
//!             tracing::error!(error = %e, "invalid settings");
//!             return std::process::ExitCode::from(2);
//!         }
//!     };
//!     let drain = args.common.drain_timeout.unwrap_or(settings.server.limits.drain_timeout);
//!     shutdown::run_service(drain, move |shutdown| async move {
//!         let listener = tokio::net::TcpListener::bind(("0.0.0.0", settings.server.port)).await?;
//!         let router = Router::new().route("/", get(|| async { "hello" }));
//!         serve::serve(listener, router, &settings.server.limits, shutdown.token().clone()).await
//!     })
//!     .exit_code()
//! }
//! ```

pub mod clock;
pub mod duration;
pub mod gated;
pub mod percent;
pub mod prometheus;
pub mod shard;
pub mod shutdown;
pub mod stall;

#[cfg(feature = "service")]
pub mod auth;
#[cfg(feature = "service")]
pub mod cli;
#[cfg(feature = "service")]
pub mod error_body;
#[cfg(feature = "service")]
pub mod http2;
#[cfg(feature = "service")]
pub mod logging;
#[cfg(feature = "service")]
pub mod properties;
#[cfg(feature = "service")]
pub mod serve;
#[cfg(feature = "service")]
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
