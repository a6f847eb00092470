//! YAML and `.properties` parsing with flattening to dotted keys: never
//! panics, never hangs, whatever the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = config_server::fuzzing::yaml(&text);
    let _ = config_server::fuzzing::properties(&text);
});
