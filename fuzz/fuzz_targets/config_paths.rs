//! Request paths of the config server (application, profiles, label, file;
//! traversal checks): never panics; an accepted path names no `..` part.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = config_server::paths::parse(raw) {
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("\"..\""), "{raw:?} -> {shown}");
    }
});
