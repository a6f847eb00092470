//! Eureka's JSON codec: the shapes Eureka's Jackson codec writes
//! (`{"instance":{...}}`, `"port":{"$":8080,"@enabled":"true"}`, string
//! timestamps and flags, `{"@class":"java.util.Collections$EmptyMap"}` for an
//! empty metadata map), written by hand into a byte buffer, and a lenient
//! reader.

use std::io::Write as _;

use serde_json::Value;

use super::decode;
use super::error::DecodeError;
use super::model::{Application, Applications, InstanceInfo, LeaseInfo};
use super::view::{
    ApplicationView, ApplicationsView, Detail, InstanceView, lease_fields, optional_fields, sid,
};

/// Parses a request or response body as JSON.
fn parse(bytes: &[u8]) -> Result<Value, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Syntax {
        format: "JSON",
        reason: e.to_string(),
    })
}

/// Decodes `{"instance":{...}}` (or a bare instance object).
pub fn decode_instance(bytes: &[u8]) -> Result<InstanceInfo, DecodeError> {
    decode_instance_value(&parse(bytes)?)
}

/// Decodes an instance from JSON that is already parsed: `{"instance":{...}}`
/// or a bare instance object, with the same rules as [`decode_instance`].
/// For documents that embed instances, such as Eureka's replication batches,
/// so they need not be written back to bytes first.
///
/// ```
/// use cloud_protocol::eureka::json;
///
/// let item: serde_json::Value = serde_json::from_str(r#"{"action":"Register","instanceInfo":
///     {"instanceId":"h:svc","hostName":"h","app":"SVC","ipAddr":"10.0.0.1","port":"8080"}}"#).unwrap();
/// let info = json::decode_instance_value(&item["instanceInfo"]).unwrap();
/// assert_eq!((info.app.as_str(), info.port.port), ("SVC", 8080));
/// ```
pub fn decode_instance_value(value: &Value) -> Result<InstanceInfo, DecodeError> {
    decode::instance_document(value)
}

/// Decodes `{"application":{...}}` (or a bare application object).
pub fn decode_application(bytes: &[u8]) -> Result<Application, DecodeError> {
    decode::application_document(&parse(bytes)?)
}

/// Decodes `{"applications":{...}}` (or a bare applications object).
pub fn decode_applications(bytes: &[u8]) -> Result<Applications, DecodeError> {
    decode::applications_document(&parse(bytes)?)
}

/// Writes `{"instance":{...}}`.
pub fn encode_instance(info: &InstanceInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_instance_document(&mut out, InstanceView::from(info));
    out
}

/// Writes `{"application":{...}}`.
pub fn encode_application(app: &Application) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 * (1 + app.instances.len()));
    write_application_document(&mut out, &ApplicationView::from(app));
    out
}

/// Writes `{"applications":{...}}`.
pub fn encode_applications(apps: &Applications) -> Vec<u8> {
    let mut out = Vec::new();
    write_applications_document(&mut out, &ApplicationsView::from(apps));
    out
}

/// Appends `{"applications":{...}}` for a view to `out`.
pub fn write_applications_document(out: &mut Vec<u8>, apps: &ApplicationsView<'_>) {
    out.extend_from_slice(b"{\"applications\":{\"versions__delta\":\"");
    push_int(out, apps.version_delta);
    out.extend_from_slice(b"\",\"apps__hashcode\":");
    push_str(out, apps.apps_hashcode);
    out.extend_from_slice(b",\"application\":[");
    push_separated(out, &apps.applications, write_application);
    out.extend_from_slice(b"]}}");
}

/// Appends `{"application":{...}}` for a view to `out`.
pub fn write_application_document(out: &mut Vec<u8>, app: &ApplicationView<'_>) {
    out.extend_from_slice(b"{\"application\":");
    write_application(out, app);
    out.push(b'}');
}

/// Appends `{"instance":{...}}` for a view to `out`.
pub fn write_instance_document(out: &mut Vec<u8>, instance: InstanceView<'_>) {
    out.extend_from_slice(b"{\"instance\":");
    write_instance(out, instance);
    out.push(b'}');
}

fn write_application(out: &mut Vec<u8>, app: &ApplicationView<'_>) {
    out.extend_from_slice(b"{\"name\":");
    push_str(out, app.name);
    out.extend_from_slice(b",\"instance\":[");
    push_separated(out, &app.instances, |out, inst| write_instance(out, *inst));
    out.extend_from_slice(b"]}");
}

/// Appends one instance object (no wrapper) to `out`.
pub fn write_instance(out: &mut Vec<u8>, view: InstanceView<'_>) {
    let i = view.info;
    let full = view.detail == Detail::Full;
    out.push(b'{');
    field_str(out, "instanceId", &i.instance_id, false);
    field_str(out, "hostName", &i.host_name, true);
    field_str(out, "app", &i.app, true);
    field_str(out, "ipAddr", &i.ip_addr, true);
    if let Some(sid) = sid(i).filter(|_| full) {
        field_str(out, "sid", sid, true);
    }
    field_str(out, "status", i.status.as_str(), true);
    if full {
        field_str(out, "overriddenStatus", i.overridden_status.as_str(), true);
    }
    for (name, p) in [("port", i.port), ("securePort", i.secure_port)] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":{\"$\":");
        push_int(out, i64::from(p.port));
        out.extend_from_slice(if p.enabled {
            b",\"@enabled\":\"true\"}"
        } else {
            b",\"@enabled\":\"false\"}"
        });
    }
    if full {
        out.extend_from_slice(b",\"countryId\":");
        push_int(out, i64::from(i.country_id));
    }
    let dc = &i.data_center_info;
    out.extend_from_slice(b",\"dataCenterInfo\":{\"@class\":");
    push_str(out, &dc.class);
    out.extend_from_slice(b",\"name\":");
    push_str(out, &dc.name);
    if !dc.metadata.is_empty() {
        out.extend_from_slice(b",\"metadata\":");
        write_map(out, &dc.metadata);
    }
    out.push(b'}');
    if full {
        if let Some(lease) = view.lease {
            write_lease(out, &lease);
        }
        out.extend_from_slice(b",\"metadata\":");
        if i.metadata.is_empty() {
            out.extend_from_slice(br#"{"@class":"java.util.Collections$EmptyMap"}"#);
        } else {
            write_map(out, &i.metadata);
        }
    }
    for (name, value) in optional_fields(i, view.detail) {
        field_str(out, name, value, true);
    }
    if full {
        field_str(
            out,
            "isCoordinatingDiscoveryServer",
            bool_str(i.is_coordinating_discovery_server),
            true,
        );
    }
    out.extend_from_slice(b",\"lastUpdatedTimestamp\":\"");
    push_int(out, i.last_updated_timestamp);
    out.push(b'"');
    if full {
        out.extend_from_slice(b",\"lastDirtyTimestamp\":\"");
        push_int(out, i.last_dirty_timestamp);
        out.push(b'"');
    }
    if let Some(action) = i.action_type {
        field_str(out, "actionType", action.as_str(), true);
    }
    if let Some(asg) = &i.asg_name {
        field_str(out, "asgName", asg, true);
    }
    out.push(b'}');
}

fn write_lease(out: &mut Vec<u8>, l: &LeaseInfo) {
    out.extend_from_slice(b",\"leaseInfo\":{");
    push_separated(out, lease_fields(l), |out, (name, value)| {
        push_key(out, name);
        push_int(out, value);
    });
    out.push(b'}');
}

fn write_map(out: &mut Vec<u8>, map: &super::metadata::Metadata) {
    out.push(b'{');
    push_separated(out, map.iter(), |out, (k, v)| {
        push_str(out, k);
        out.push(b':');
        push_str(out, v);
    });
    out.push(b'}');
}

pub(crate) fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn field_str(out: &mut Vec<u8>, name: &str, value: &str, comma: bool) {
    if comma {
        out.push(b',');
    }
    push_key(out, name);
    push_str(out, value);
}

/// Appends `"name":`.
fn push_key(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends `items`, each written by `write`, separated by commas.
fn push_separated<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    for (n, item) in items.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write(out, item);
    }
}

pub(crate) fn push_int(out: &mut Vec<u8>, n: i64) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// Appends `s` as a JSON string literal.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
