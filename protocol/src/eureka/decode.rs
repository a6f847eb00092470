//! Lenient conversion from a document tree to the model.
//!
//! Both codecs parse into a `serde_json::Value` in Eureka's JSON convention
//! (attributes as `@name`, element text beside attributes as `$`), then share
//! this code. It accepts what real clients send: numbers as strings or
//! numbers, `@enabled` as a bool or a string, `value`/`enabled`/`class`
//! without their sigils, single objects where arrays are expected and `null`
//! for absent fields; it ignores unknown fields.

use serde_json::{Map, Value};

use super::error::DecodeError;
use super::metadata::Metadata;
use super::model::{
    Application, Applications, DataCenterInfo, InstanceInfo, LeaseInfo, PortWrapper,
};
use super::status::{ActionType, InstanceStatus};

/// Text of a scalar (or of the `$` of an object); `None` for null or absent.
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(m) => text(m.get("$").or_else(|| m.get("value"))),
        Value::Null | Value::Array(_) => None,
    }
}

/// Non-blank text, trimmed.
fn non_blank(v: Option<&Value>) -> Option<String> {
    text(v)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn integer(v: Option<&Value>, field: &'static str) -> Result<Option<i64>, DecodeError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            // Whole numbers written as floats by some clients (`30.0`).
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| invalid(field, format!("{n} is not an integer"))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| invalid(field, format!("{s:?} is not an integer"))),
        Some(Value::Object(m)) => integer(m.get("$").or_else(|| m.get("value")), field),
        Some(other) => Err(invalid(field, format!("{other} is not an integer"))),
    }
}

fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s.trim().eq_ignore_ascii_case("true")),
        Value::Number(n) => Some(n.as_i64().is_some_and(|i| i != 0)),
        _ => None,
    }
}

fn invalid(field: &'static str, reason: String) -> DecodeError {
    DecodeError::Invalid { field, reason }
}

fn ranged<T: TryFrom<i64>>(v: Option<i64>, field: &'static str) -> Result<Option<T>, DecodeError> {
    v.map(|i| T::try_from(i).map_err(|_| invalid(field, format!("{i} is out of range"))))
        .transpose()
}

/// A value or the list of values where one or many may appear.
pub(crate) fn as_list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    }
}

/// Decodes with `decode` each object of the `key` list in `m` (one object
/// stands for a list of one); an item that is not an object is an error.
fn objects<T>(
    m: &Map<String, Value>,
    key: &str,
    decode: impl Fn(&Map<String, Value>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    as_list(m.get(key))
        .into_iter()
        .map(|item| {
            let obj = item
                .as_object()
                .ok_or_else(|| DecodeError::Shape(format!("{key} is not an object")))?;
            decode(obj)
        })
        .collect()
}

/// The object under `key` when `v` is a wrapper `{key: {...}}`, else `v`
/// itself when it is an object.
pub(crate) fn unwrap_object<'a>(
    v: &'a Value,
    key: &str,
) -> Result<&'a Map<String, Value>, DecodeError> {
    let obj = v
        .as_object()
        .ok_or_else(|| DecodeError::Shape(format!("expected an object with \"{key}\"")))?;
    match obj.get(key) {
        Some(Value::Object(inner)) if obj.len() == 1 => Ok(inner),
        _ => Ok(obj),
    }
}

fn port(
    v: Option<&Value>,
    field: &'static str,
    default: PortWrapper,
) -> Result<PortWrapper, DecodeError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(default);
    };
    let (number, enabled) = match v {
        Value::Object(m) => {
            let enabled = boolean(m.get("@enabled").or_else(|| m.get("enabled")));
            (
                integer(m.get("$").or_else(|| m.get("value")), field)?,
                enabled,
            )
        }
        other => (integer(Some(other), field)?, None),
    };
    Ok(PortWrapper {
        port: ranged::<u16>(number, field)?.unwrap_or(default.port),
        enabled: enabled.unwrap_or(default.enabled),
    })
}

/// A string map without Java's class marker; built in one sort, so its
/// cost stays `O(n log n)` whatever the order of the keys.
fn string_map(v: Option<&Value>) -> Metadata {
    let Some(Value::Object(m)) = v else {
        return Metadata::new();
    };
    m.iter()
        .filter(|(k, val)| {
            !(*k == "@class"
                || (*k == "class"
                    && matches!(val, Value::String(s) if s.starts_with("java.util."))))
        })
        .filter_map(|(k, val)| text(Some(val)).map(|t| (k.clone(), t)))
        .collect()
}

fn data_center(v: Option<&Value>) -> Result<DataCenterInfo, DecodeError> {
    let m = match v {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => return Err(DecodeError::Missing("dataCenterInfo")),
        Some(_) => return Err(invalid("dataCenterInfo", "expected an object".to_owned())),
    };
    let name = non_blank(m.get("name")).ok_or(DecodeError::Missing("dataCenterInfo Name"))?;
    let class = non_blank(m.get("@class").or_else(|| m.get("class"))).unwrap_or_else(|| {
        if name == "Amazon" {
            super::model::AMAZON_DATA_CENTER_CLASS
        } else {
            super::model::DEFAULT_DATA_CENTER_CLASS
        }
        .to_owned()
    });
    Ok(DataCenterInfo {
        class,
        name,
        metadata: string_map(m.get("metadata")),
    })
}

fn lease(v: Option<&Value>) -> Result<Option<LeaseInfo>, DecodeError> {
    let Some(Value::Object(m)) = v else {
        return Ok(None);
    };
    let d = LeaseInfo::default();
    let int = |k: &'static str| integer(m.get(k), k);
    Ok(Some(LeaseInfo {
        renewal_interval_in_secs: ranged::<u32>(
            int("renewalIntervalInSecs")?,
            "renewalIntervalInSecs",
        )?
        .filter(|s| *s > 0)
        .unwrap_or(d.renewal_interval_in_secs),
        duration_in_secs: ranged::<u32>(int("durationInSecs")?, "durationInSecs")?
            .filter(|s| *s > 0)
            .unwrap_or(d.duration_in_secs),
        registration_timestamp: int("registrationTimestamp")?.unwrap_or(0),
        last_renewal_timestamp: match int("lastRenewalTimestamp")? {
            Some(t) => t,
            None => int("renewalTimestamp")?.unwrap_or(0),
        },
        eviction_timestamp: int("evictionTimestamp")?.unwrap_or(0),
        service_up_timestamp: int("serviceUpTimestamp")?.unwrap_or(0),
    }))
}

/// Decodes one instance from its object (no wrapper). Does not check that
/// required fields are present: see [`InstanceInfo::validate`].
pub(crate) fn instance(m: &Map<String, Value>) -> Result<InstanceInfo, DecodeError> {
    let status_of = |k: &str| {
        m.get(k)
            .and_then(|v| text(Some(v)))
            .map(|s| InstanceStatus::parse_lenient(&s))
    };
    let dc = match m.get("dataCenterInfo") {
        None | Some(Value::Null) => None,
        some => Some(data_center(some)?),
    };
    Ok(InstanceInfo {
        instance_id: non_blank(m.get("instanceId")).unwrap_or_default(),
        host_name: non_blank(m.get("hostName")).unwrap_or_default(),
        app: non_blank(m.get("app")).unwrap_or_default(),
        ip_addr: non_blank(m.get("ipAddr")).unwrap_or_default(),
        // Eureka's placeholders for "no sid" read as none, so they round-trip.
        sid: non_blank(m.get("sid")).filter(|s| s != "na" && s != "unknown"),
        app_group_name: non_blank(m.get("appGroupName")),
        status: status_of("status").unwrap_or(InstanceStatus::Up),
        overridden_status: status_of("overriddenStatus")
            .or_else(|| status_of("overriddenstatus"))
            .unwrap_or(InstanceStatus::Unknown),
        port: port(m.get("port"), "port", PortWrapper::enabled(7001))?,
        secure_port: port(
            m.get("securePort"),
            "securePort",
            PortWrapper::disabled(7002),
        )?,
        country_id: ranged::<i32>(integer(m.get("countryId"), "countryId")?, "countryId")?
            .unwrap_or(1),
        data_center_info: dc.clone().unwrap_or_default(),
        lease_info: lease(m.get("leaseInfo"))?,
        metadata: string_map(m.get("metadata")),
        home_page_url: non_blank(m.get("homePageUrl")),
        status_page_url: non_blank(m.get("statusPageUrl")),
        health_check_url: non_blank(m.get("healthCheckUrl")),
        secure_health_check_url: non_blank(m.get("secureHealthCheckUrl")),
        vip_address: non_blank(m.get("vipAddress")),
        secure_vip_address: non_blank(m.get("secureVipAddress")),
        is_coordinating_discovery_server: boolean(m.get("isCoordinatingDiscoveryServer"))
            .unwrap_or(false),
        last_updated_timestamp: integer(m.get("lastUpdatedTimestamp"), "lastUpdatedTimestamp")?
            .unwrap_or(0),
        last_dirty_timestamp: integer(m.get("lastDirtyTimestamp"), "lastDirtyTimestamp")?
            .unwrap_or(0),
        action_type: m
            .get("actionType")
            .and_then(|v| text(Some(v)))
            .and_then(|s| ActionType::parse(&s)),
        asg_name: non_blank(m.get("asgName")),
    })
    .map(|mut info| {
        if dc.is_none() {
            // Remember that it was absent so validation can say so.
            info.data_center_info.name.clear();
        }
        info
    })
}

/// Decodes `{"instance":{...}}` or a bare instance object.
pub(crate) fn instance_document(v: &Value) -> Result<InstanceInfo, DecodeError> {
    instance(unwrap_object(v, "instance")?)
}

/// Decodes one application object (no wrapper).
pub(crate) fn application(m: &Map<String, Value>) -> Result<Application, DecodeError> {
    let name = non_blank(m.get("name")).unwrap_or_default();
    let instances = objects(m, "instance", instance)?;
    Ok(Application { name, instances })
}

/// Decodes `{"application":{...}}` or a bare application object.
pub(crate) fn application_document(v: &Value) -> Result<Application, DecodeError> {
    application(unwrap_object(v, "application")?)
}

/// Decodes `{"applications":{...}}` or a bare applications object.
pub(crate) fn applications_document(v: &Value) -> Result<Applications, DecodeError> {
    let m = unwrap_object(v, "applications")?;
    let applications = objects(m, "application", application)?;
    Ok(Applications {
        version_delta: integer(m.get("versions__delta"), "versions__delta")?.unwrap_or(0),
        apps_hashcode: text(m.get("apps__hashcode")).unwrap_or_default(),
        applications,
    })
}

impl InstanceInfo {
    /// Checks what Eureka's `ApplicationResource.addInstance` requires of a
    /// registration, in its order: an id (the host name stands in for a
    /// missing `instanceId`, as Eureka's `getId()` does), host name, IP
    /// address, app name, data center and its name. Fills in the id.
    pub fn validate(&mut self) -> Result<(), DecodeError> {
        if self.instance_id.trim().is_empty() {
            if self.host_name.trim().is_empty() {
                return Err(DecodeError::Missing("instanceId"));
            }
            self.instance_id = self.host_name.clone();
        }
        if self.host_name.trim().is_empty() {
            return Err(DecodeError::Missing("hostname"));
        }
        if self.ip_addr.trim().is_empty() {
            return Err(DecodeError::Missing("ip address"));
        }
        if self.app.trim().is_empty() {
            return Err(DecodeError::Missing("appName"));
        }
        if self.data_center_info.name.trim().is_empty() {
            return Err(DecodeError::Missing("dataCenterInfo"));
        }
        Ok(())
    }
}
