//! Compiled routes and the route table: predicates and filters built once
//! from their definitions, ordered by `order` and then by declaration, and
//! matched without I/O. The running gateway keeps its table behind an
//! `ArcSwap`, so a refresh replaces it in one step while requests in
//! flight finish on the table they started with.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{Definition, InvalidDefinition, RouteDefinition, RouteError};
use crate::filter::retry::RetryPolicy;
use crate::filter::{BreakerFilter, Filter, FilterSettings};
use crate::predicate::{Captures, Predicate, RequestView, WeightGroups};
pub use crate::target::{Target, parse_target};

/// One compiled route.
#[derive(Debug)]
pub struct Route {
    /// `id`.
    pub id: String,
    /// `uri`, as written.
    pub uri: String,
    /// `order`.
    pub order: i32,
    /// The target.
    pub target: Target,
    /// The predicates, all of which must hold.
    pub predicates: Vec<Predicate>,
    /// `default-filters` then the route's `filters`.
    pub filters: Vec<Filter>,
    /// Connect timeout (metadata `connect-timeout`, else the gateway's).
    pub connect_timeout: Duration,
    /// Response timeout (metadata `response-timeout`, else the gateway's;
    /// none when `-1`).
    pub response_timeout: Option<Duration>,
    /// The definition, for the admin API.
    pub definition: RouteDefinition,
    breaker: Option<BreakerFilter>,
    retry: Option<RetryPolicy>,
    /// `CacheRequestBody`'s limit, when the route has it.
    cached_body: Option<usize>,
    /// Whether the route has a `RemoveJsonAttributesResponseBody`.
    rewrites_json: bool,
}

impl Route {
    /// The `CircuitBreaker` filter, if any.
    pub fn breaker(&self) -> Option<&BreakerFilter> {
        self.breaker.as_ref()
    }

    /// The `Retry` policy, if any.
    pub fn retry(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }

    /// The most bytes `CacheRequestBody` reads, when the route has it.
    pub fn cached_body(&self) -> Option<usize> {
        self.cached_body
    }

    /// Whether a `RemoveJsonAttributesResponseBody` may change responses.
    pub fn rewrites_json(&self) -> bool {
        self.rewrites_json
    }

    /// The route as SCG's `/actuator/gateway/routes` shows it.
    pub fn describe(&self) -> Value {
        let defs = |list: &[Definition]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        json!({
            "route_id": self.id,
            "uri": self.uri,
            "order": self.order,
            "predicate": defs(&self.definition.predicates).join(" && "),
            "predicates": defs(&self.definition.predicates),
            "filters": defs(&self.definition.filters),
            "metadata": self.definition.metadata,
        })
    }
}

/// Gateway-wide settings that route compilation reads.
#[derive(Debug, Clone)]
pub struct CompileSettings {
    /// Settings of filters.
    pub filters: FilterSettings,
    /// Connect timeout of routes without their own.
    pub connect_timeout: Duration,
    /// Response timeout of routes without their own.
    pub response_timeout: Option<Duration>,
    /// The file the definitions came from, for errors.
    pub file: Option<PathBuf>,
    /// SCG's `fail-on-route-definition-error: false`: a route that does not
    /// compile is left out with a warning instead of failing the table.
    pub skip_invalid: bool,
}

/// The routes in match order.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
    weights: WeightGroups,
    /// Routes left out because they did not compile
    /// ([`CompileSettings::skip_invalid`]), with why.
    left_out: Vec<RouteError>,
    /// Whether a predicate reads the time (`After`, `Before`, `Between`).
    reads_time: bool,
}

impl RouteTable {
    /// Compiles `definitions` with `default_filters` in front of each
    /// route's own.
    pub fn compile(
        definitions: Vec<RouteDefinition>,
        default_filters: &[Definition],
        settings: &CompileSettings,
    ) -> Result<RouteTable, RouteError> {
        let mut seen = HashSet::new();
        let mut routes = Vec::with_capacity(definitions.len());
        let mut weights = WeightGroups::default();
        let mut left_out = Vec::new();
        for def in definitions {
            let id = def.id.clone();
            let fail = |e: InvalidDefinition| RouteError::new(settings.file.clone(), &id, e);
            let compiled = match seen.insert(id.clone()) {
                true => compile_route(def, default_filters, settings).map_err(fail),
                false => Err(fail(InvalidDefinition::new(
                    "id",
                    "another route has the same id",
                ))),
            };
            let route = match compiled {
                Ok(route) => route,
                Err(e) if settings.skip_invalid => {
                    tracing::warn!(
                        route = %id,
                        error = %e,
                        "route left out: it does not compile (fail-on-route-definition-error is false)"
                    );
                    left_out.push(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for p in &route.predicates {
                if let Predicate::Weight { group, weight } = p {
                    weights.add(group, &route.id, *weight);
                }
            }
            routes.push(Arc::new(route));
        }
        weights.seal();
        routes.sort_by_key(|r| r.order);
        let reads_time = routes.iter().flat_map(|r| &r.predicates).any(|p| {
            matches!(
                p,
                Predicate::After(_) | Predicate::Before(_) | Predicate::Between(..)
            )
        });
        Ok(RouteTable {
            routes,
            weights,
            left_out,
            reads_time,
        })
    }

    /// Takes out why the first route left out whose id `wanted` accepts
    /// did not compile.
    pub fn take_left_out(&mut self, wanted: impl Fn(&str) -> bool) -> Option<RouteError> {
        let at = self.left_out.iter().position(|e| wanted(e.route()))?;
        Some(self.left_out.remove(at))
    }

    /// The first route whose predicates all hold, with the captures of its
    /// `Path` and `Host` patterns.
    pub fn find(&self, req: &RequestView<'_>) -> Option<(&Arc<Route>, Captures)> {
        let mut vars = Vec::new();
        for route in &self.routes {
            vars.clear();
            if route
                .predicates
                .iter()
                .all(|p| p.test(req, &route.id, &self.weights, &mut vars))
            {
                return Some((route, vars));
            }
        }
        None
    }

    /// Whether a route's predicates read the time: when none does, a
    /// request view's `now_millis` is not read and need not be the time.
    pub fn reads_time(&self) -> bool {
        self.reads_time
    }

    /// The routes in match order.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// The route with `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.id == id)
    }
}

fn compile_route(
    def: RouteDefinition,
    default_filters: &[Definition],
    settings: &CompileSettings,
) -> Result<Route, InvalidDefinition> {
    let target = parse_target(&def.uri)?;
    let predicates = def
        .predicates
        .iter()
        .map(Predicate::compile)
        .collect::<Result<Vec<_>, _>>()?;
    let mut filters = Vec::with_capacity(default_filters.len() + def.filters.len());
    for f in default_filters {
        filters.push(
            Filter::compile(f, &def.id, &settings.filters)
                .map_err(InvalidDefinition::in_default_filters)?,
        );
    }
    for f in &def.filters {
        filters.push(Filter::compile(f, &def.id, &settings.filters)?);
    }
    let mut breaker = None;
    let mut retry = None;
    for f in &filters {
        match f {
            Filter::CircuitBreaker(b) => breaker = Some((**b).clone()),
            Filter::Retry(r) => retry = Some((**r).clone()),
            _ => {}
        }
    }
    let millis = |key: &str| -> Result<Option<i64>, InvalidDefinition> {
        let Some((_, v)) = def
            .metadata
            .iter()
            .find(|(k, _)| crate::config::canonical(k) == crate::config::canonical(key))
        else {
            return Ok(None);
        };
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| {
                InvalidDefinition::new(
                    format!("metadata {key}"),
                    format!("`{v}` is not a number of milliseconds"),
                )
            })
    };
    let connect_timeout = match millis("connect-timeout")? {
        Some(ms) if ms > 0 => Duration::from_millis(ms.unsigned_abs()),
        Some(ms) => {
            return Err(InvalidDefinition::new(
                "metadata connect-timeout",
                format!("{ms} is not a positive number of milliseconds"),
            ));
        }
        None => settings.connect_timeout,
    };
    let response_timeout = match millis("response-timeout")? {
        Some(ms) if ms < 0 => None,
        Some(ms) => Some(Duration::from_millis(ms.unsigned_abs())),
        None => settings.response_timeout,
    };
    let cached_body = filters.iter().find_map(|f| match f {
        Filter::CacheRequestBody(limit) => Some(*limit),
        _ => None,
    });
    let rewrites_json = filters
        .iter()
        .any(|f| matches!(f, Filter::RemoveJsonAttributesResponseBody(_)));
    Ok(Route {
        id: def.id.clone(),
        uri: def.uri.clone(),
        order: def.order,
        target,
        predicates,
        filters,
        connect_timeout,
        response_timeout,
        definition: def,
        breaker,
        retry,
        cached_body,
        rewrites_json,
    })
}

#[cfg(test)]
mod tests;
