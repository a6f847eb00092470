//! Eureka XML decoding: never panics, never hangs; whatever decodes
//! re-encodes to XML that decodes to the same value.
#![no_main]

use cloud_protocol::eureka::xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(instance) = xml::decode_instance(data) {
        let again = xml::decode_instance(&xml::encode_instance(&instance))
            .expect("our own encoding decodes");
        assert_eq!(again, instance);
    }
    if let Ok(app) = xml::decode_application(data) {
        let again = xml::decode_application(&xml::encode_application(&app))
            .expect("our own encoding decodes");
        assert_eq!(again, app);
    }
    if let Ok(apps) = xml::decode_applications(data) {
        let again = xml::decode_applications(&xml::encode_applications(&apps))
            .expect("our own encoding decodes");
        assert_eq!(again, apps);
    }
});
