//! XML decoding time against the number of attributes on one element, with
//! the limits raised out of the way: it should grow linearly (quick-xml's
//! own duplicate check made it quadratic: 140 000 attributes took 52 s).
//!
//! `cargo bench -p cloud-protocol --bench xml_attributes`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use cloud_protocol::eureka::xml::{self, XmlLimits};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// `<instance a0='' a1='' ...>` and the fields a registration needs.
fn instance_with_attributes(n: usize) -> String {
    let mut s = String::from("<instance");
    for i in 0..n {
        s.push_str(&format!(" a{i}=''"));
    }
    s.push_str("><instanceId>i</instanceId><hostName>h</hostName><app>A</app><ipAddr>1</ipAddr>");
    s.push_str("<dataCenterInfo class='x'><name>MyOwn</name></dataCenterInfo></instance>");
    s
}

fn attributes(c: &mut Criterion) {
    let unlimited = XmlLimits {
        max_attributes_per_element: usize::MAX,
        ..XmlLimits::default()
    };
    let mut group = c.benchmark_group("xml_attributes_on_one_element");
    group.sample_size(10);
    for n in [1_000, 10_000, 40_000, 140_000] {
        let doc = instance_with_attributes(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &doc, |b, doc| {
            b.iter(|| xml::decode_instance_within(black_box(doc.as_bytes()), &unlimited).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, attributes);
criterion_main!(benches);
