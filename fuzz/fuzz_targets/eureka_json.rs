//! Eureka JSON decoding: never panics, never hangs; whatever decodes
//! re-encodes to JSON that decodes to the same value.
#![no_main]

use cloud_protocol::eureka::json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(instance) = json::decode_instance(data) {
        let again = json::decode_instance(&json::encode_instance(&instance))
            .expect("our own encoding decodes");
        assert_eq!(again, instance);
    }
    if let Ok(app) = json::decode_application(data) {
        let again = json::decode_application(&json::encode_application(&app))
            .expect("our own encoding decodes");
        assert_eq!(again, app);
    }
    if let Ok(apps) = json::decode_applications(data) {
        let again = json::decode_applications(&json::encode_applications(&apps))
            .expect("our own encoding decodes");
        assert_eq!(again, apps);
    }
});
