//! Route matching and the request filter chain, without sockets: the
//! per-request work the gateway adds before it forwards.
//!
//! `cargo bench -p api-gateway --bench route_match`

#![allow(missing_docs)]

use std::hint::black_box;

use api_gateway::Gateway;
use api_gateway::predicate::RequestView;
use api_gateway::settings::Settings;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};

/// A gateway with `n` routes, each `Path=/svc<i>/{id}/**` and `Method=GET`
/// with `StripPrefix=1` and `AddRequestHeader`.
fn gateway(n: usize) -> Gateway {
    let routes: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": format!("svc{i}"),
                "uri": format!("http://10.0.0.{}:8080", i % 250 + 1),
                "predicates": [format!("Path=/svc{i}/{{id}}/**"), "Method=GET,POST", "Header=X-Tenant, [a-z]+"],
                "filters": ["StripPrefix=1", "AddRequestHeader=X-Id, {id}"],
            })
        })
        .collect();
    let mut settings = Settings::default();
    settings.spring.cloud.gateway.routes = routes;
    Gateway::builder(settings).build().expect("routes compile")
}

fn bench(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant", HeaderValue::from_static("acme"));
    headers.insert("host", HeaderValue::from_static("gw.example"));
    for n in [10usize, 100] {
        let gw = gateway(n);
        let table = gw.table();
        let path = format!("/svc{}/42/orders", n - 1);
        c.bench_function(&format!("match last of {n} routes"), |b| {
            b.iter(|| {
                let view = RequestView {
                    method: &Method::GET,
                    path: black_box(&path),
                    query: Some("page=2"),
                    headers: &headers,
                    remote: "10.1.1.1".parse().expect("address"),
                    now_millis: 0,
                    weight_roll: 0.5,
                };
                black_box(table.find(&view))
            })
        });
    }
    let gw = gateway(1);
    let table = gw.table();
    c.bench_function("match and run 2 request filters", |b| {
        b.iter(|| {
            let view = RequestView {
                method: &Method::GET,
                path: black_box("/svc0/42/orders"),
                query: None,
                headers: &headers,
                remote: "10.1.1.1".parse().expect("address"),
                now_millis: 0,
                weight_roll: 0.5,
            };
            let (route, vars) = table.find(&view).expect("matches");
            let mut out = api_gateway::filter::Outbound {
                method: Method::GET,
                path: view.path.to_owned(),
                query: None,
                headers: headers.clone(),
                vars,
                preserve_host: false,
                host: None,
                remote: view.remote,
                response_headers: Vec::new(),
                fallback: None,
                uri: None,
            };
            for f in &route.filters {
                let _ = f.apply_request(&mut out);
            }
            black_box(out)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
