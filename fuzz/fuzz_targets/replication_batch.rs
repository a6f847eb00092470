//! Eureka's peer replication batch (`POST /peerreplication/batch`): never
//! panics, never hangs, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = discovery_server::replication::wire::read_replication_list(data);
    let _ = discovery_server::replication::wire::read_response_list(data);
});
