//! discovery-server binary (work in progress).

fn main() {}
