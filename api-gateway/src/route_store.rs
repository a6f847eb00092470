//! SCG's Redis route definition repository
//! (`spring.cloud.gateway.redis-route-definition-repository.enabled`):
//! routes saved through the admin API kept in Redis, where every gateway
//! of a fleet, SCG's and ours, reads them.
//!
//! SCG's `RedisRouteDefinitionRepository` keeps a route under the key
//! `routedefinition_<id>`, its value the route definition as JSON (the
//! form of `/actuator/gateway/routedefinitions`: `id`, `predicates` and
//! `filters` as `{name, args}`, `uri`, `metadata`, `order`, `enabled`),
//! and finds them all with `SCAN MATCH routedefinition_*`. Here the same
//! keys and values, so a route saved through either gateway serves on
//! both after their next refresh.
//!
//! A value that is not a route definition is skipped with a warning, as
//! SCG skips it. When Redis does not answer, the routes last read stay in
//! use (SCG would drop them at that refresh).

use serde_json::Value;

use crate::config::{RouteDefinition, parse_routes};
use crate::filter::ratelimit::redis::{RedisBuckets, RedisUnavailable};

/// SCG's key prefix.
pub const KEY_PREFIX: &str = "routedefinition_";

/// The Redis key of route `id`.
pub fn key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// The saved routes in the Redis of `redis`.
#[derive(Debug, Clone)]
pub struct RedisRoutes {
    redis: RedisBuckets,
}

impl RedisRoutes {
    /// The repository in `redis`.
    pub fn new(redis: RedisBuckets) -> RedisRoutes {
        RedisRoutes { redis }
    }

    /// Every route definition in Redis, in key order; values that are not
    /// route definitions are skipped.
    pub async fn load(&self) -> Result<Vec<RouteDefinition>, RedisUnavailable> {
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, found): (u64, Vec<String>) = self
                .redis
                .call(|mut conn| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{KEY_PREFIX}*"))
                        .arg("COUNT")
                        .arg(500)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            keys.extend(found);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = self
            .redis
            .call(|mut conn| {
                let keys = &keys;
                async move { redis::cmd("MGET").arg(keys).query_async(&mut conn).await }
            })
            .await?;
        let mut routes = Vec::with_capacity(keys.len());
        for (key, value) in keys.iter().zip(values) {
            let Some(text) = value else { continue };
            match parse(&text) {
                Ok(route) => routes.push(route),
                Err(reason) => {
                    tracing::warn!(
                        key,
                        reason,
                        "a value in Redis is not a route definition; skipped"
                    );
                }
            }
        }
        Ok(routes)
    }

    /// Writes `routes`, each under its key, in one `MSET`.
    pub async fn save(&self, routes: &[RouteDefinition]) -> Result<(), RedisUnavailable> {
        if routes.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(String, String)> = routes
            .iter()
            .map(|r| (key(&r.id), r.to_json().to_string()))
            .collect();
        self.redis
            .call(|mut conn| {
                let pairs = &pairs;
                async move {
                    redis::cmd("MSET")
                        .arg(pairs)
                        .query_async::<()>(&mut conn)
                        .await
                }
            })
            .await
    }

    /// Deletes route `id`; false when Redis had no such route.
    pub async fn delete(&self, id: &str) -> Result<bool, RedisUnavailable> {
        let key = key(id);
        let removed: i64 = self
            .redis
            .call(|mut conn| {
                let key = &key;
                async move { redis::cmd("DEL").arg(key).query_async(&mut conn).await }
            })
            .await?;
        Ok(removed > 0)
    }
}

/// One stored value as a route definition.
fn parse(text: &str) -> Result<RouteDefinition, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let has_id = value
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| !id.is_empty());
    if !has_id {
        return Err("no `id`".to_owned());
    }
    let mut parsed =
        parse_routes(std::slice::from_ref(&value), None, 0).map_err(|e| e.to_string())?;
    parsed.pop().ok_or_else(|| "no route".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_are_scgs_route_definition_json() {
        let text = r#"{"id":"dyn","predicates":[{"name":"Path","args":{"_genkey_0":"/dyn/**"}}],"filters":[{"name":"StripPrefix","args":{"_genkey_0":"1"}}],"uri":"http://x:80","metadata":{"k":"v"},"order":-3,"enabled":true}"#;
        let route = parse(text).expect("a route");
        assert_eq!((route.id.as_str(), route.order), ("dyn", -3));
        let written: Value = serde_json::from_str(&route.to_json().to_string()).expect("JSON");
        let read: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(written, read, "written back as read");
        assert_eq!(key("dyn"), "routedefinition_dyn");
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"uri":"http://x"}"#).is_err(), "no id");
        assert!(parse(r#"{"id":"a","uri":"http://x","bogus":1}"#).is_err());
    }
}
