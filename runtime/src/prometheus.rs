//! The Prometheus text exposition format (version 0.0.4), written once for
//! every server: `# HELP` and `# TYPE` lines per family, label values
//! escaped, families in the order they are written.
//!
//! ```
//! use cloud_runtime::prometheus::PrometheusText;
//!
//! let mut out = PrometheusText::new();
//! out.counter("app_requests_total", "Requests served.", 42);
//! out.family("app_rejected_total", "counter", "Requests refused by a limit.")
//!     .sample(&[("reason", "body_too_large")], 3)
//!     .sample(&[("reason", "too_many_keys")], 0);
//! let text = out.finish();
//! assert!(text.contains("app_requests_total 42\n"));
//! assert!(text.contains("app_rejected_total{reason=\"body_too_large\"} 3\n"));
//! ```

use std::fmt::{Display, Write as _};

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A Prometheus text document being written.
#[derive(Debug, Default)]
pub struct PrometheusText {
    out: String,
}

impl PrometheusText {
    /// An empty document.
    pub fn new() -> PrometheusText {
        PrometheusText {
            out: String::with_capacity(4096),
        }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. `kind` is
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> Family<'_> {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        Family {
            out: &mut self.out,
            name: name.to_owned(),
        }
    }

    /// A counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, "counter", help).sample(&[], value);
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, "gauge", help).sample(&[], value);
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// The samples of one family.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: String,
}

impl Family<'_> {
    /// One sample with `labels` (name, value) pairs.
    pub fn sample(self, labels: &[(&str, &str)], value: impl Display) -> Self {
        self.sample_named("", labels, value)
    }

    /// One sample of the family's name plus `suffix` (`_bucket`, `_sum`,
    /// `_count`).
    pub fn sample_named(self, suffix: &str, labels: &[(&str, &str)], value: impl Display) -> Self {
        let _ = write!(self.out, "{}{suffix}", self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                escape_label_into(self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = PrometheusText::new();
        out.family("x_total", "counter", "Line one\nline \\two")
            .sample(&[("path", "a\"b\\c\nd"), ("m", "GET")], 1);
        let text = out.finish();
        assert_eq!(
            text,
            "# HELP x_total Line one\\nline \\\\two\n# TYPE x_total counter\nx_total{path=\"a\\\"b\\\\c\\nd\",m=\"GET\"} 1\n"
        );
    }

    #[test]
    fn gauges_and_suffixed_samples() {
        let mut out = PrometheusText::new();
        out.gauge("up", "Whether it is up.", 1);
        out.family("lat_seconds", "summary", "Latency.")
            .sample_named("_sum", &[], 0.5)
            .sample_named("_count", &[], 2);
        let text = out.finish();
        assert!(text.contains("# TYPE up gauge\nup 1\n"));
        assert!(text.contains("lat_seconds_sum 0.5\nlat_seconds_count 2\n"));
    }
}
