//! [`RegistryInstances`]: `lb://` names resolved from cloud-client's
//! Eureka registry cache. A background task follows the cache's snapshots
//! and keeps a converted view; lookups read that view (no registry call on
//! the request path), and subscribers hear of a change only when some
//! service's instances really changed, not on every fetch.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use arc_swap::ArcSwap;
use cloud_client::discovery::{
    DiscoveryClient, DiscoveryError, RegistrySnapshot, ServiceInstance, registration,
};
use cloud_client::settings::{
    ApplicationSettings, ClientSettings, ServerSettings, SettingsError, SpringSettings,
};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Instance, ServiceInstances};
use crate::settings::Settings;

/// The name the gateway registers under when `spring.application.name` is
/// not set.
const DEFAULT_NAME: &str = "api-gateway";

/// The discovery client's settings from the gateway's: `eureka.*`,
/// `spring.application.name` and `port` (the proxy's, registered when
/// `eureka.client.register-with-eureka` is true). `None` when no registry
/// is configured ([`Eureka::is_configured`](crate::settings::Eureka::is_configured)).
pub fn client_settings(
    settings: &Settings,
    port: u16,
) -> Result<Option<ClientSettings>, SettingsError> {
    if !settings.eureka.is_configured() {
        return Ok(None);
    }
    let name = settings
        .spring
        .application
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_NAME.to_owned());
    let client = ClientSettings {
        server: ServerSettings { port },
        spring: SpringSettings {
            application: ApplicationSettings { name: Some(name) },
            ..SpringSettings::default()
        },
        eureka: settings.eureka.0.clone(),
    };
    client.validate()?;
    Ok(Some(client))
}

/// Services and instances as cloud-client's registry cache holds them,
/// followed live. Create it, give it to the gateway builder, then
/// [`start`](Self::start) (or [`follow`](Self::follow)) it inside the
/// runtime; until then it knows no service.
#[derive(Debug)]
pub struct RegistryInstances {
    view: ArcSwap<View>,
    changes: watch::Sender<u64>,
    client: OnceLock<DiscoveryClient>,
    /// Ends the follower task when this is dropped.
    stop: CancellationToken,
}

/// The converted cache: upper-case application name to its instances.
#[derive(Debug, Default)]
struct View {
    apps: HashMap<String, App>,
    /// The same lists under lower-case names, so `lb://users` finds
    /// `USERS` without building a string per request.
    lower: HashMap<String, Arc<[Instance]>>,
}

#[derive(Debug, Clone)]
struct App {
    /// The cache's list this was converted from (compared by pointer).
    from: Arc<[ServiceInstance]>,
    instances: Arc<[Instance]>,
}

impl Default for RegistryInstances {
    fn default() -> Self {
        RegistryInstances {
            view: ArcSwap::from_pointee(View::default()),
            changes: watch::channel(0).0,
            client: OnceLock::new(),
            stop: CancellationToken::new(),
        }
    }
}

impl Drop for RegistryInstances {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RegistryInstances {
    /// No services until started.
    pub fn new() -> Arc<RegistryInstances> {
        Arc::new(RegistryInstances::default())
    }

    /// Starts a discovery client with `settings` (registering the gateway
    /// only when `eureka.client.register-with-eureka` is true) and follows
    /// its cache. A registry that cannot be reached is not an error: the
    /// client keeps trying and the health says so. Call
    /// [`DiscoveryClient::shutdown`] on the result when stopping.
    pub async fn start(
        self: &Arc<Self>,
        settings: ClientSettings,
    ) -> Result<DiscoveryClient, DiscoveryError> {
        let me = registration(&settings);
        let client = DiscoveryClient::start_with(settings, me).await?;
        self.follow(client.clone());
        Ok(client)
    }

    /// Follows `client`'s registry cache from now on (a second client is
    /// ignored with a warning). Must be called inside a tokio runtime.
    pub fn follow(self: &Arc<Self>, client: DiscoveryClient) {
        let mut snapshots = client.subscribe_registry();
        if self.client.set(client).is_err() {
            tracing::warn!("the registry view already follows a discovery client");
            return;
        }
        let me: Weak<RegistryInstances> = Arc::downgrade(self);
        let stop = self.stop.clone();
        tokio::spawn(async move {
            loop {
                let snapshot = Arc::clone(&snapshots.borrow_and_update());
                match me.upgrade() {
                    Some(view) => view.apply(&snapshot),
                    None => return,
                }
                tokio::select! {
                    changed = snapshots.changed() => if changed.is_err() { return },
                    () = stop.cancelled() => return,
                }
            }
        });
    }

    /// The discovery client followed, once started.
    pub fn client(&self) -> Option<&DiscoveryClient> {
        self.client.get()
    }

    /// Converts what changed in `snapshot` and tells subscribers when some
    /// application's instances differ.
    fn apply(&self, snapshot: &RegistrySnapshot) {
        let old = self.view.load();
        let mut apps = HashMap::with_capacity(snapshot.len());
        let mut changed = false;
        for name in snapshot.application_names() {
            let list = snapshot.application(name);
            let app = match old.apps.get(name) {
                Some(a) if Arc::ptr_eq(&a.from, &list) || a.from.as_ref() == list.as_ref() => App {
                    from: list,
                    instances: Arc::clone(&a.instances),
                },
                _ => {
                    changed = true;
                    App {
                        instances: list.iter().map(instance).collect(),
                        from: list,
                    }
                }
            };
            apps.insert(name.to_owned(), app);
        }
        // Every new name set `changed`; the same count means none left.
        changed |= apps.len() != old.apps.len();
        let lower = apps
            .iter()
            .map(|(name, app)| (name.to_ascii_lowercase(), Arc::clone(&app.instances)))
            .collect();
        self.view.store(Arc::new(View { apps, lower }));
        if changed {
            tracing::debug!(
                generation = snapshot.generation(),
                "registry instances changed"
            );
            self.changes.send_modify(|n| *n += 1);
        }
    }
}

/// The gateway's view of a registry instance.
fn instance(i: &ServiceInstance) -> Instance {
    Instance {
        host: i.host.clone(),
        port: i.port,
        secure: i.secure,
        up: i.is_up(),
        weight: i.weight,
    }
}

impl ServiceInstances for RegistryInstances {
    fn instances(&self, service: &str) -> Arc<[Instance]> {
        let view = self.view.load();
        if let Some(a) = view.apps.get(service) {
            return Arc::clone(&a.instances);
        }
        if let Some(list) = view.lower.get(service) {
            return Arc::clone(list);
        }
        // Mixed case (`User-Service`): rare enough to build the key.
        match view.apps.get(&service.to_ascii_uppercase()) {
            Some(a) => Arc::clone(&a.instances),
            None => Arc::from(Vec::new()),
        }
    }

    /// Upper-case names, as Eureka holds them (so the discovery locator's
    /// paths are `/USERS/**` unless `lower-case-service-id`, as with SCG
    /// on Eureka).
    fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self.view.load().apps.keys().cloned().collect();
        names.sort();
        names
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn health(&self) -> Option<(&'static str, serde_json::Value)> {
        let component = match self.client.get() {
            Some(c) => cloud_client::actuator::discovery_health(&c.health()),
            None => json!({ "status": "UNKNOWN", "details": { "started": false } }),
        };
        Some(("discoveryClient", component))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cloud_client::discovery::RegistryCache;
    use cloud_protocol::eureka::{
        Application, Applications, InstanceInfo, InstanceStatus, PortWrapper,
    };

    use super::*;
    use crate::settings::Source;

    fn info(app: &str, id: &str, port: u16, status: InstanceStatus) -> InstanceInfo {
        InstanceInfo {
            instance_id: id.into(),
            host_name: "127.0.0.1".into(),
            app: app.into(),
            ip_addr: "127.0.0.1".into(),
            status,
            port: PortWrapper::enabled(port),
            ..InstanceInfo::default()
        }
    }

    /// A full listing with one instance per application.
    fn listing(instances: Vec<InstanceInfo>) -> Applications {
        Applications {
            version_delta: 1,
            apps_hashcode: String::new(),
            applications: instances
                .into_iter()
                .map(|i| Application {
                    name: i.app.clone(),
                    instances: vec![i],
                })
                .collect(),
        }
    }

    #[test]
    fn subscribers_hear_of_real_changes_only_and_unchanged_lists_keep_their_arc() {
        let view = RegistryInstances::default();
        let mut rx = view.subscribe();
        let mut cache = RegistryCache::new();
        cache.apply_full(&listing(vec![
            info("USERS", "u1", 1, InstanceStatus::Up),
            info("ORDERS", "o1", 2, InstanceStatus::Up),
        ]));
        let first = cache.snapshot(&RegistrySnapshot::default());
        view.apply(&first);
        assert!(rx.has_changed().unwrap_or(false));
        rx.mark_unchanged();
        assert_eq!(view.services(), ["ORDERS", "USERS"]);
        let users = view.instances("users");
        assert_eq!(users.len(), 1);
        assert!(Arc::ptr_eq(&users, &view.instances("Users")));
        assert_eq!((users[0].port, users[0].up), (1, true));

        // The next fetch finds the same registry: nothing to tell.
        let again = cache.snapshot(&first);
        view.apply(&again);
        assert!(!rx.has_changed().unwrap_or(true));
        assert!(Arc::ptr_eq(&users, &view.instances("USERS")));

        // An instance goes DOWN, another service leaves.
        cache.apply_full(&listing(vec![info("USERS", "u1", 1, InstanceStatus::Down)]));
        view.apply(&cache.snapshot(&again));
        assert!(rx.has_changed().unwrap_or(false));
        assert!(!view.instances("USERS")[0].up);
        assert_eq!(view.services(), ["USERS"]);
        assert!(view.instances("ORDERS").is_empty());
    }

    fn load(env: &[(&str, &str)]) -> Settings {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Source {
            file: None,
            env: Arc::new(env),
            flags: Vec::new(),
        }
        .load()
        .expect("settings load")
    }

    #[test]
    fn the_registry_comes_from_spring_names_and_the_gateway_does_not_register_by_default() {
        assert!(
            client_settings(&load(&[]), 8080).expect("valid").is_none(),
            "no registry unless one is named"
        );
        let s = load(&[
            (
                "EUREKA_CLIENT_SERVICEURL_DEFAULTZONE",
                "http://eureka:8761/eureka/",
            ),
            ("EUREKA_CLIENT_REGISTRYFETCHINTERVALSECONDS", "5"),
        ]);
        let c = client_settings(&s, 9000)
            .expect("valid")
            .expect("configured");
        assert_eq!(c.eureka_service_urls().expect("urls").len(), 1);
        assert_eq!(c.eureka.client.registry_fetch_interval_seconds, 5);
        assert!(!c.eureka.client.register_with_eureka);
        assert_eq!(c.application_name(), "api-gateway");
        assert_eq!(c.server.port, 9000);

        let bad = load(&[
            (
                "EUREKA_CLIENT_SERVICEURL_DEFAULTZONE",
                "http://eureka:8761/eureka/",
            ),
            ("EUREKA_CLIENT_REGISTRYFETCHINTERVALSECONDS", "0"),
        ]);
        let e = client_settings(&bad, 9000).expect_err("0 is refused");
        assert_eq!(e.key(), "eureka.client.registry-fetch-interval-seconds");
    }
}
