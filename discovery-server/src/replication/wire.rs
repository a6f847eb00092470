//! Eureka's peer replication messages, as `PeerReplicationResource` reads
//! and writes them in JSON:
//!
//! ```json
//! {"replicationList":[{"appName":"SVC","id":"h:svc:8080","lastDirtyTimestamp":1700000000000,
//!   "overriddenStatus":null,"status":"UP","instanceInfo":{...},"action":"Register"}]}
//! ```
//!
//! answered by
//!
//! ```json
//! {"responseList":[{"statusCode":200},{"statusCode":409,"responseEntity":{...}}]}
//! ```
//!
//! `instanceInfo` and `responseEntity` are bare instance objects in
//! Eureka's JSON shape (the `protocol` codec writes and reads them). Only
//! `Register` items carry `instanceInfo`; heartbeats carry `status`,
//! `lastDirtyTimestamp` and `overriddenStatus`; cancels only the ids.

use cloud_protocol::eureka::{InstanceInfo, InstanceStatus, json};
use serde_json::Value;

/// A replicated action, named as Eureka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Register or re-register, with the whole instance.
    Register,
    /// Renew a lease.
    Heartbeat,
    /// Remove an instance.
    Cancel,
    /// Set a status override.
    StatusUpdate,
    /// Remove a status override.
    DeleteStatusOverride,
}

impl Action {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Register => "Register",
            Action::Heartbeat => "Heartbeat",
            Action::Cancel => "Cancel",
            Action::StatusUpdate => "StatusUpdate",
            Action::DeleteStatusOverride => "DeleteStatusOverride",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "Register" => Action::Register,
            "Heartbeat" => Action::Heartbeat,
            "Cancel" => Action::Cancel,
            "StatusUpdate" => Action::StatusUpdate,
            "DeleteStatusOverride" => Action::DeleteStatusOverride,
            _ => return None,
        })
    }
}

/// Why a replication message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replication message: {0}")]
pub struct WireError(String);

/// One received replication item.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationItem {
    /// Application name.
    pub app_name: String,
    /// Instance id.
    pub id: String,
    /// The sender's last dirty timestamp of the instance.
    pub last_dirty_timestamp: Option<i64>,
    /// The override the sender holds.
    pub overridden_status: Option<InstanceStatus>,
    /// The status the sender holds.
    pub status: Option<InstanceStatus>,
    /// The whole instance (`Register` only).
    pub instance_info: Option<InstanceInfo>,
    /// What to do.
    pub action: Action,
}

/// One answer of a batch, in the order of the items.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResponse {
    /// HTTP status the item would have had as a single request.
    pub status_code: u16,
    /// The receiver's newer record on a `409`.
    pub response_entity: Option<InstanceInfo>,
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends `{"replicationList":[...]}` for `items` (action and the
/// instance's state when the change was made) to `out`.
pub fn write_replication_list<'a>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = (Action, &'a InstanceInfo)>,
) {
    out.extend_from_slice(b"{\"replicationList\":[");
    for (i, (action, info)) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"appName\":");
        push_json_str(out, &info.app);
        out.extend_from_slice(b",\"id\":");
        push_json_str(out, &info.instance_id);
        if action != Action::Cancel {
            out.extend_from_slice(b",\"lastDirtyTimestamp\":");
            out.extend_from_slice(info.last_dirty_timestamp.to_string().as_bytes());
            out.extend_from_slice(b",\"overriddenStatus\":");
            if info.overridden_status == InstanceStatus::Unknown {
                out.extend_from_slice(b"null");
            } else {
                push_json_str(out, info.overridden_status.as_str());
            }
            out.extend_from_slice(b",\"status\":");
            push_json_str(out, info.status.as_str());
        }
        if action == Action::Register {
            out.extend_from_slice(b",\"instanceInfo\":");
            json::write_instance(out, info.into());
        }
        out.extend_from_slice(b",\"action\":\"");
        out.extend_from_slice(action.as_str().as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
}

/// Appends `{"responseList":[...]}` to `out`.
pub fn write_response_list(out: &mut Vec<u8>, responses: &[ItemResponse]) {
    out.extend_from_slice(b"{\"responseList\":[");
    for (i, r) in responses.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"statusCode\":");
        out.extend_from_slice(r.status_code.to_string().as_bytes());
        if let Some(entity) = &r.response_entity {
            out.extend_from_slice(b",\"responseEntity\":");
            json::write_instance(out, entity.into());
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

fn parse(bytes: &[u8]) -> Result<Value, WireError> {
    serde_json::from_slice(bytes).map_err(|e| WireError(e.to_string()))
}

/// The array under `key`, accepting one object where an array is expected.
fn list<'a>(doc: &'a Value, key: &str) -> Result<Vec<&'a Value>, WireError> {
    match doc.get(key) {
        Some(Value::Array(items)) => Ok(items.iter().collect()),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(one @ Value::Object(_)) => Ok(vec![one]),
        Some(_) => Err(WireError(format!("\"{key}\" is not a list"))),
    }
}

fn text<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn integer(item: &Value, key: &str) -> Result<Option<i64>, WireError> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| WireError(format!("{key}: {n} is not an integer"))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| WireError(format!("{key}: {s:?} is not an integer"))),
        Some(other) => Err(WireError(format!("{key}: {other} is not an integer"))),
    }
}

fn status(item: &Value, key: &str) -> Result<Option<InstanceStatus>, WireError> {
    text(item, key)
        .map(|s| InstanceStatus::parse_strict(s).ok_or_else(|| WireError(format!("{key}: {s:?}"))))
        .transpose()
}

fn instance(v: Option<&Value>) -> Result<Option<InstanceInfo>, WireError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => json::decode_instance_value(v)
            .map(Some)
            .map_err(|e| WireError(e.to_string())),
    }
}

/// Reads one item; a broken item fails alone, not the whole batch.
fn item(v: &Value) -> Result<ReplicationItem, WireError> {
    let action = text(v, "action").ok_or_else(|| WireError("missing action".to_owned()))?;
    let action = Action::parse(action).ok_or_else(|| WireError(format!("action {action:?}")))?;
    let instance_info = instance(v.get("instanceInfo"))?;
    let app_name = text(v, "appName")
        .map(str::to_owned)
        .or_else(|| instance_info.as_ref().map(|i| i.app.clone()))
        .ok_or_else(|| WireError("missing appName".to_owned()))?;
    let id = text(v, "id")
        .map(str::to_owned)
        .or_else(|| instance_info.as_ref().map(|i| i.instance_id.clone()))
        .ok_or_else(|| WireError("missing id".to_owned()))?;
    Ok(ReplicationItem {
        app_name,
        id,
        last_dirty_timestamp: integer(v, "lastDirtyTimestamp")?,
        overridden_status: status(v, "overriddenStatus")?,
        status: status(v, "status")?,
        instance_info,
        action,
    })
}

/// Reads a `ReplicationList`. The outer error is a malformed document;
/// each item is read on its own so one bad item gets a `400` alone.
pub fn read_replication_list(
    bytes: &[u8],
) -> Result<Vec<Result<ReplicationItem, WireError>>, WireError> {
    let doc = parse(bytes)?;
    if !doc.is_object() {
        return Err(WireError("expected an object".to_owned()));
    }
    Ok(list(&doc, "replicationList")?
        .into_iter()
        .map(item)
        .collect())
}

/// Reads a `ReplicationListResponse`.
pub fn read_response_list(bytes: &[u8]) -> Result<Vec<ItemResponse>, WireError> {
    let doc = parse(bytes)?;
    list(&doc, "responseList")?
        .into_iter()
        .map(|r| {
            let code = integer(r, "statusCode")?
                .and_then(|c| u16::try_from(c).ok())
                .ok_or_else(|| WireError("missing statusCode".to_owned()))?;
            Ok(ItemResponse {
                status_code: code,
                // A broken entity only loses the conflict resolution.
                response_entity: instance(r.get("responseEntity")).ok().flatten(),
            })
        })
        .collect()
}
