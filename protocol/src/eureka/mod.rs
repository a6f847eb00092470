//! Netflix Eureka wire types and their JSON and XML codecs.
//!
//! The shapes are Eureka's own, byte for byte where clients care: the JSON
//! that Eureka's Jackson codec writes and the XML that its XStream
//! converters write, so the Netflix Java client, py-eureka-client (XML only),
//! eureka-js-client and Steeltoe read them unchanged. The readers are lenient
//! in what real clients send (see [`decode`](self#decoding)).
//!
//! # Layout
//! - `status`: [`InstanceStatus`] and [`ActionType`].
//! - `model`: [`InstanceInfo`], [`LeaseInfo`], [`DataCenterInfo`],
//!   [`PortWrapper`], [`Application`], [`Applications`].
//! - `metadata`: [`Metadata`], a compact sorted string map.
//! - `hashcode`: [`AppsHashcode`], Eureka's `apps__hashcode` (`DOWN_1_UP_5_`).
//! - `view`: borrowed views the writers take, so a server can write its
//!   registry without cloning it, in full or compact [`Detail`].
//! - [`json`] and [`xml`]: hand-written writers into a byte buffer and
//!   lenient readers; both readers share one tree-to-model decoder.
//! - `error`: [`DecodeError`], a reason fit for a `400`; [`LimitExceeded`]
//!   when a document is over an [`xml::XmlLimits`] limit.
//!
//! # Decoding
//! Numbers are accepted as numbers or strings, booleans as booleans or
//! strings, `{"$":8080,"@enabled":"true"}` as well as `{"value":..,"enabled":..}`,
//! one object where an array is expected, `null` for absent; unknown fields
//! are ignored. No input panics a decoder (property-tested), and decoding
//! takes time linear in the size of the input; XML is read within
//! [`xml::XmlLimits`] (attributes per element, elements, nesting depth).
//!
//! # Example
//! `cargo run -p cloud-protocol --example eureka_codec` decodes a
//! registration as the Java client sends it and writes it back in both
//! shapes. In short:
//! ```
//! use cloud_protocol::eureka::{json, xml, InstanceInfo, InstanceStatus};
//!
//! let body = br#"{"instance":{"instanceId":"h:svc:8080","hostName":"h","app":"SVC",
//!     "ipAddr":"10.0.0.1","status":"UP","port":{"$":"8080","@enabled":true},
//!     "dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}}}"#;
//! let mut info: InstanceInfo = json::decode_instance(body).unwrap();
//! info.validate().unwrap();
//! assert_eq!(info.port.port, 8080);
//! assert_eq!(info.status, InstanceStatus::Up);
//!
//! let xml_bytes = xml::encode_instance(&info);
//! assert!(String::from_utf8_lossy(&xml_bytes).contains(r#"<port enabled="true">8080</port>"#));
//! assert_eq!(xml::decode_instance(&xml_bytes).unwrap(), info);
//! ```

mod decode;
mod error;
mod hashcode;
mod metadata;
mod model;
mod status;
mod view;

pub mod json;
pub mod xml;

pub use error::{DecodeError, DocumentLimit, LimitExceeded};
pub use hashcode::AppsHashcode;
pub use metadata::Metadata;
pub use model::{
    AMAZON_DATA_CENTER_CLASS, Application, Applications, DEFAULT_DATA_CENTER_CLASS, DataCenterInfo,
    InstanceInfo, LeaseInfo, PortWrapper,
};
pub use status::{ActionType, InstanceStatus};
pub use view::{ApplicationView, ApplicationsView, Detail, InstanceView};

#[cfg(test)]
mod tests;
