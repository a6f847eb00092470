//! The dashboard at `/`: server-rendered HTML, no scripts, no build step.
//! Applications and instances with status and last renewal, replicas,
//! self-preservation in plain words, uptime.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Html;

use super::AppState;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn ago(now: i64, then: i64) -> String {
    let secs = (now - then).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m {}s ago", secs / 60, secs % 60),
        _ => format!("{}h {}m ago", secs / 3600, (secs % 3600) / 60),
    }
}

/// Instance rows rendered at most, so the page stays usable with a large
/// registry.
const MAX_ROWS: usize = 2000;

/// `GET /`.
pub(super) async fn page(State(state): State<AppState>) -> Html<String> {
    let node = &state.node;
    let registry = node.registry();
    let now = registry.now_millis();
    let snap = registry.snapshot();
    let counts = registry.counts();
    let p = registry.preservation();
    let mut h = String::with_capacity(4096 + 256 * counts.instances);
    h.push_str(concat!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Discovery Server</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}",
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.UP{color:#060}.DOWN{color:#a00}",
        ".OUT_OF_SERVICE{color:#a60}.warn{background:#fee;padding:.5em}</style></head><body>",
        "<h1>Discovery Server</h1>"
    ));
    let uptime = ago(now, now - node.uptime_millis()).replace(" ago", "");
    let _ = write!(
        h,
        "<h2>System</h2><table id=\"system\"><tr><th>Uptime</th><td id=\"uptime\">{uptime}</td></tr>\
         <tr><th>Registry version</th><td>{}</td></tr><tr><th>Applications</th><td id=\"app-count\">{}</td></tr>\
         <tr><th>Instances</th><td id=\"instance-count\">{}</td></tr>\
         <tr><th>Renewals in the last minute</th><td>{}</td></tr>\
         <tr><th>Renewal threshold</th><td>{} (expected {:.1} a minute)</td></tr></table>",
        snap.version,
        counts.applications,
        counts.instances,
        p.renews_last_min,
        p.renews_threshold,
        p.expected_renews_per_min
    );
    let preservation = if !p.enabled {
        "Self-preservation is off: expired leases are always evicted.".to_owned()
    } else if p.is_active() {
        format!(
            "Self-preservation is ACTIVE: {} renewals in the last minute is not above the threshold of {}, so expired \
             leases are kept (this looks like a network problem, not instances going away).",
            p.renews_last_min, p.renews_threshold
        )
    } else {
        "Self-preservation is on and not active: expired leases are evicted.".to_owned()
    };
    let class = if p.is_active() { " class=\"warn\"" } else { "" };
    let _ = write!(
        h,
        "<p id=\"self-preservation\"{class}>{}</p>",
        escape(&preservation)
    );

    h.push_str("<h2>Replicas</h2><table id=\"replicas\"><tr><th>Peer</th><th>Health</th><th>Last error</th></tr>");
    let peers = node.peer_status();
    if peers.is_empty() {
        h.push_str("<tr><td colspan=\"3\">No peers configured: this node runs alone.</td></tr>");
    }
    for peer in peers.iter() {
        let health = match peer.healthy {
            Some(true) => "healthy",
            Some(false) => "unreachable",
            None => "unknown",
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{health}</td><td>{}</td></tr>",
            escape(&peer.url),
            escape(peer.last_error.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>");

    h.push_str(concat!(
        "<h2>Applications</h2><table id=\"instances\"><tr><th>Application</th><th>Instance</th><th>Status</th>",
        "<th>Address</th><th>Last renewal</th></tr>"
    ));
    if snap.applications.is_empty() {
        h.push_str("<tr><td colspan=\"5\">No instances registered.</td></tr>");
    }
    let all = snap
        .applications
        .iter()
        .flat_map(|(app, list)| list.iter().map(move |i| (app, i)));
    for (app, (info, lease)) in all.take(MAX_ROWS) {
        let status = info.status.as_str();
        let _ = write!(
            h,
            "<tr data-app=\"{app}\" data-instance=\"{id}\"><td>{app}</td><td>{id}</td>\
             <td class=\"{status}\">{status}</td><td>{host}:{port}</td><td>{renewed}</td></tr>",
            app = escape(app),
            id = escape(&info.instance_id),
            host = escape(&info.host_name),
            port = info.port.port,
            renewed = ago(now, lease.last_renewal_timestamp),
        );
    }
    h.push_str("</table>");
    if counts.instances > MAX_ROWS {
        let _ = write!(
            h,
            "<p id=\"truncated\">{} more instances not shown; see <a href=\"/eureka/apps\">/eureka/apps</a>.</p>",
            counts.instances - MAX_ROWS
        );
    }
    h.push_str("</body></html>");
    Html(h)
}
