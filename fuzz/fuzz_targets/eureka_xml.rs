//! Eureka XML decoding: never panics, never hangs; whatever decodes and
//! is a valid registration (what the server stores and later writes)
//! re-encodes to XML that decodes to the same value.
#![no_main]

use cloud_protocol::eureka::xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut instance) = xml::decode_instance(data)
        && instance.validate().is_ok()
    {
        let again = xml::decode_instance(&xml::encode_instance(&instance))
            .expect("our own encoding decodes");
        assert_eq!(again, instance);
    }
    if let Ok(mut app) = xml::decode_application(data)
        && app.instances.iter_mut().all(|i| i.validate().is_ok())
    {
        let again = xml::decode_application(&xml::encode_application(&app))
            .expect("our own encoding decodes");
        assert_eq!(again, app);
    }
    if let Ok(mut apps) = xml::decode_applications(data)
        && apps
            .applications
            .iter_mut()
            .flat_map(|a| a.instances.iter_mut())
            .all(|i| i.validate().is_ok())
    {
        let again = xml::decode_applications(&xml::encode_applications(&apps))
            .expect("our own encoding decodes");
        assert_eq!(again, apps);
    }
});
