//! Eureka's XML codec: the elements and attributes Eureka's XStream
//! converters write (`<port enabled="true">8080</port>`,
//! `<dataCenterInfo class="...">`, `<overriddenstatus>`,
//! `<metadata class="java.util.Collections$EmptyMap"/>`), written by hand, and
//! a lenient reader that turns XML into the JSON convention the shared
//! decoder reads (attributes as `@name`, text beside attributes as `$`).

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};

use super::decode;
use super::error::{DecodeError, DocumentLimit, LimitExceeded};
use super::json::{bool_str, push_int};
use super::model::{Application, Applications, InstanceInfo, LeaseInfo};
use super::view::{
    ApplicationView, ApplicationsView, Detail, InstanceView, lease_fields, optional_fields, sid,
};

/// How much of an XML document the reader accepts before it stops with
/// [`DecodeError::TooLarge`]. Reading takes time linear in the size of the
/// document whatever the limits; the limits bound the tree it builds.
///
/// The defaults fit any document a Eureka server or client writes, a full
/// registry of many thousands of instances included. A server reading one
/// registration can tighten [`max_elements`](Self::max_elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Deepest element nesting. Eureka documents are at most five levels
    /// deep (`applications/application/instance/metadata/key`). Default is 32.
    pub max_depth: usize,
    /// Most attributes on one element. Eureka writes at most one
    /// (`enabled`, `class`). Default is 1 024.
    pub max_attributes_per_element: usize,
    /// Most elements in one document. One instance is about 40 elements
    /// plus one per metadata entry. Default is 1 000 000.
    pub max_elements: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_depth: 32,
            max_attributes_per_element: 1024,
            max_elements: 1_000_000,
        }
    }
}

impl XmlLimits {
    fn exceeded(limit: DocumentLimit, max: usize) -> DecodeError {
        DecodeError::TooLarge(LimitExceeded { limit, max })
    }
}

/// Decodes `<instance>...</instance>` within the default [`XmlLimits`].
pub fn decode_instance(bytes: &[u8]) -> Result<InstanceInfo, DecodeError> {
    decode_instance_within(bytes, &XmlLimits::default())
}

/// Decodes `<instance>...</instance>` within `limits`.
///
/// ```
/// use cloud_protocol::eureka::xml::{self, XmlLimits};
///
/// let limits = XmlLimits { max_attributes_per_element: 2, ..XmlLimits::default() };
/// let err = xml::decode_instance_within(br#"<instance a="1" b="2" c="3"/>"#, &limits).unwrap_err();
/// assert!(err.limit_exceeded().is_some());
/// ```
pub fn decode_instance_within(
    bytes: &[u8],
    limits: &XmlLimits,
) -> Result<InstanceInfo, DecodeError> {
    decode::instance_document(&parse(bytes, limits)?)
}

/// Decodes `<application>...</application>` within the default [`XmlLimits`].
pub fn decode_application(bytes: &[u8]) -> Result<Application, DecodeError> {
    decode::application_document(&parse(bytes, &XmlLimits::default())?)
}

/// Decodes `<applications>...</applications>` within the default [`XmlLimits`].
pub fn decode_applications(bytes: &[u8]) -> Result<Applications, DecodeError> {
    decode::applications_document(&parse(bytes, &XmlLimits::default())?)
}

/// Writes `<instance>...</instance>`.
pub fn encode_instance(info: &InstanceInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_instance(&mut out, InstanceView::from(info));
    out
}

/// Writes `<application>...</application>`.
pub fn encode_application(app: &Application) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 * (1 + app.instances.len()));
    write_application(&mut out, &ApplicationView::from(app));
    out
}

/// Writes `<applications>...</applications>`.
pub fn encode_applications(apps: &Applications) -> Vec<u8> {
    let mut out = Vec::new();
    write_applications(&mut out, &ApplicationsView::from(apps));
    out
}

/// Appends `<applications>` for a view to `out`.
pub fn write_applications(out: &mut Vec<u8>, apps: &ApplicationsView<'_>) {
    out.extend_from_slice(b"<applications>\n  <versions__delta>");
    push_int(out, apps.version_delta);
    out.extend_from_slice(b"</versions__delta>\n  <apps__hashcode>");
    push_text(out, apps.apps_hashcode);
    out.extend_from_slice(b"</apps__hashcode>\n");
    for app in &apps.applications {
        write_application(out, app);
    }
    out.extend_from_slice(b"</applications>\n");
}

/// Appends `<application>` for a view to `out`.
pub fn write_application(out: &mut Vec<u8>, app: &ApplicationView<'_>) {
    out.extend_from_slice(b"<application>\n  <name>");
    push_text(out, app.name);
    out.extend_from_slice(b"</name>\n");
    for inst in &app.instances {
        write_instance(out, *inst);
    }
    out.extend_from_slice(b"</application>\n");
}

/// Appends `<instance>` for a view to `out`.
pub fn write_instance(out: &mut Vec<u8>, view: InstanceView<'_>) {
    let i = view.info;
    let full = view.detail == Detail::Full;
    out.extend_from_slice(b"<instance>\n");
    element(out, "instanceId", &i.instance_id);
    element(out, "hostName", &i.host_name);
    element(out, "app", &i.app);
    element(out, "ipAddr", &i.ip_addr);
    if let Some(sid) = sid(i).filter(|_| full) {
        element(out, "sid", sid);
    }
    element(out, "status", i.status.as_str());
    if full {
        element(out, "overriddenstatus", i.overridden_status.as_str());
    }
    for (name, p) in [("port", i.port), ("securePort", i.secure_port)] {
        out.extend_from_slice(b"  <");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b" enabled=\"");
        out.extend_from_slice(bool_str(p.enabled).as_bytes());
        out.extend_from_slice(b"\">");
        push_int(out, i64::from(p.port));
        out.extend_from_slice(b"</");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b">\n");
    }
    if full {
        int_element(out, "countryId", i64::from(i.country_id));
    }
    out.extend_from_slice(b"  <dataCenterInfo class=\"");
    push_text(out, &i.data_center_info.class);
    out.extend_from_slice(b"\">\n  ");
    element(out, "name", &i.data_center_info.name);
    if !i.data_center_info.metadata.is_empty() {
        write_map(out, &i.data_center_info.metadata);
    }
    out.extend_from_slice(b"  </dataCenterInfo>\n");
    if full {
        if let Some(lease) = view.lease {
            write_lease(out, &lease);
        }
        if i.metadata.is_empty() {
            out.extend_from_slice(b"  <metadata class=\"java.util.Collections$EmptyMap\"/>\n");
        } else {
            write_map(out, &i.metadata);
        }
    }
    for (name, value) in optional_fields(i, view.detail) {
        element(out, name, value);
    }
    if full {
        element(
            out,
            "isCoordinatingDiscoveryServer",
            bool_str(i.is_coordinating_discovery_server),
        );
    }
    int_element(out, "lastUpdatedTimestamp", i.last_updated_timestamp);
    if full {
        int_element(out, "lastDirtyTimestamp", i.last_dirty_timestamp);
    }
    if let Some(action) = i.action_type {
        element(out, "actionType", action.as_str());
    }
    if let Some(asg) = &i.asg_name {
        element(out, "asgName", asg);
    }
    out.extend_from_slice(b"</instance>\n");
}

fn write_lease(out: &mut Vec<u8>, l: &LeaseInfo) {
    out.extend_from_slice(b"  <leaseInfo>\n");
    for (name, value) in lease_fields(l) {
        tagged(out, b"    ", name, |out| push_int(out, value));
    }
    out.extend_from_slice(b"  </leaseInfo>\n");
}

fn write_map(out: &mut Vec<u8>, map: &super::metadata::Metadata) {
    out.extend_from_slice(b"  <metadata>\n");
    for (k, v) in map.iter() {
        tagged(out, b"    ", &element_name(k), |out| push_text(out, v));
    }
    out.extend_from_slice(b"  </metadata>\n");
}

/// Metadata keys become element names; characters an XML name cannot hold
/// are written as `_` (a key that starts with a digit gets a `_` prefix).
fn element_name(key: &str) -> std::borrow::Cow<'_, str> {
    let ok_start = |c: char| c.is_alphabetic() || c == '_';
    let ok = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    match key.chars().next() {
        Some(first) if ok_start(first) && key.chars().all(ok) => std::borrow::Cow::Borrowed(key),
        Some(first) => {
            let mut s = String::with_capacity(key.len() + 1);
            if !ok_start(first) {
                s.push('_');
            }
            s.extend(key.chars().map(|c| if ok(c) { c } else { '_' }));
            std::borrow::Cow::Owned(s)
        }
        None => std::borrow::Cow::Borrowed("_"),
    }
}

/// Appends `indent<name>`, what `value` writes, and `</name>` and a newline.
fn tagged(out: &mut Vec<u8>, indent: &[u8], name: &str, value: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(indent);
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    value(out);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b">\n");
}

fn element(out: &mut Vec<u8>, name: &str, value: &str) {
    tagged(out, b"  ", name, |out| push_text(out, value));
}

fn int_element(out: &mut Vec<u8>, name: &str, value: i64) {
    tagged(out, b"  ", name, |out| push_int(out, value));
}

/// `s` without the control characters that XML 1.0 cannot carry (all of
/// C0 but tab, newline and carriage return), as [`push_text`] writes it: a
/// value read from XML is the value written back.
fn without_illegal_chars(s: &str) -> String {
    s.chars()
        .filter(|&c| c >= ' ' || matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// Appends `s` escaped for element text and attribute values; drops
/// control characters that XML 1.0 cannot carry.
fn push_text(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&apos;",
            b'\t' | b'\n' | b'\r' => continue,
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// An element being read: its name, attributes and children so far, text.
struct Open {
    name: String,
    fields: Map<String, Value>,
    text: String,
    has_children: bool,
}

impl Open {
    /// Reads an element's name and attributes, in time linear in their
    /// size: quick-xml's own duplicate check compares every attribute with
    /// every earlier one, so it is off and the map finds duplicates instead.
    fn new(start: &BytesStart<'_>, limits: &XmlLimits) -> Result<Open, DecodeError> {
        let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
        if element_name(&name) != name.as_str() {
            return Err(syntax(format!("invalid element name <{name}>")));
        }
        let mut fields = Map::new();
        for (n, attr) in start.attributes().with_checks(false).enumerate() {
            if n >= limits.max_attributes_per_element {
                return Err(XmlLimits::exceeded(
                    DocumentLimit::AttributesPerElement,
                    limits.max_attributes_per_element,
                ));
            }
            let attr = attr.map_err(syntax)?;
            let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
            let value = without_illegal_chars(&attr.unescape_value().map_err(syntax)?);
            if fields
                .insert(format!("@{key}"), Value::String(value))
                .is_some()
            {
                return Err(syntax(format!("duplicate attribute {key} on <{name}>")));
            }
        }
        Ok(Open {
            name,
            fields,
            text: String::new(),
            has_children: false,
        })
    }

    /// The JSON-convention value of a finished element.
    fn finish(mut self) -> (String, Value) {
        let text = self.text.trim();
        let value = if self.fields.is_empty() && !self.has_children {
            Value::String(text.to_owned())
        } else {
            // Text beside attributes is the element's value (`<port
            // enabled="true">8080</port>`); text mixed in between child
            // elements means nothing in Eureka's documents and is dropped.
            if !text.is_empty() && !self.has_children {
                self.fields
                    .insert("$".to_owned(), Value::String(text.to_owned()));
            }
            Value::Object(self.fields)
        };
        (self.name, value)
    }

    fn add_child(&mut self, name: String, value: Value) {
        self.has_children = true;
        match self.fields.get_mut(&name) {
            None => {
                self.fields.insert(name, value);
            }
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
        }
    }
}

fn syntax(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Syntax {
        format: "XML",
        reason: e.to_string(),
    }
}

/// Parses XML into `{root_name: value}` in Eureka's JSON convention,
/// within `limits`.
pub(crate) fn parse(bytes: &[u8], limits: &XmlLimits) -> Result<Value, DecodeError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    let mut elements = 0usize;
    let mut count_element = |root: &Option<(String, Value)>| {
        if root.is_some() {
            return Err(syntax("content after the root element"));
        }
        elements += 1;
        if elements > limits.max_elements {
            return Err(XmlLimits::exceeded(
                DocumentLimit::ElementsPerDocument,
                limits.max_elements,
            ));
        }
        Ok(())
    };
    loop {
        let event = reader.read_event().map_err(syntax)?;
        match event {
            Event::Start(start) => {
                count_element(&root)?;
                if stack.len() >= limits.max_depth {
                    return Err(XmlLimits::exceeded(DocumentLimit::Depth, limits.max_depth));
                }
                stack.push(Open::new(&start, limits)?);
            }
            Event::Empty(start) => {
                count_element(&root)?;
                if stack.len() >= limits.max_depth {
                    return Err(XmlLimits::exceeded(DocumentLimit::Depth, limits.max_depth));
                }
                let (name, value) = Open::new(&start, limits)?.finish();
                match stack.last_mut() {
                    Some(parent) => parent.add_child(name, value),
                    None => root = Some((name, value)),
                }
            }
            Event::End(_) => {
                let open = stack
                    .pop()
                    .ok_or_else(|| syntax("unexpected closing tag"))?;
                let (name, value) = open.finish();
                match stack.last_mut() {
                    Some(parent) => parent.add_child(name, value),
                    None => root = Some((name, value)),
                }
            }
            Event::Text(t) => {
                let text = without_illegal_chars(&t.unescape().map_err(syntax)?);
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(syntax("text outside the root element")),
                }
            }
            Event::CData(c) => {
                let open = stack
                    .last_mut()
                    .ok_or_else(|| syntax("CDATA outside the root element"))?;
                open.text
                    .push_str(&without_illegal_chars(&String::from_utf8_lossy(&c)));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(syntax("unclosed element"));
    }
    let (name, value) = root.ok_or_else(|| syntax("no root element"))?;
    let mut doc = Map::new();
    doc.insert(name, value);
    Ok(Value::Object(doc))
}
