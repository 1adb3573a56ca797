//! The routing table: hosts → deployments → instances, rebuilt (never edited) whenever the
//! server's routes or the set of tunnels change, and read without locks held across a request.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wayline_core::url::{UrlLimits, UrlRoute};

use crate::backend::Backend;
use crate::limits::Host;

/// One deployment's instances.
#[derive(Debug)]
pub struct Deployment {
    /// `vN`.
    pub sequence: u64,
    /// The deployment id.
    pub id: String,
    /// Its tunnels, or the platform's address when it has none.
    pub backends: Vec<Arc<Backend>>,
    /// Share of the app host's traffic, percent.
    pub weight: u32,
    /// Its host `<app>--v<N>.<domain>`: limits, figures, and its requests in flight.
    pub host: Arc<Host>,
    next: AtomicUsize,
}

impl Deployment {
    /// The instance with the fewest requests in flight (ties rotate).
    pub fn pick(&self) -> Option<Arc<Backend>> {
        let n = self.backends.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|i| &self.backends[(start + i) % n])
            .filter(|b| b.usable())
            .min_by_key(|b| b.outstanding())
            .cloned()
    }
}

/// One app host.
#[derive(Debug)]
pub struct App {
    /// Its deployments by `vN`.
    pub deployments: BTreeMap<u64, Arc<Deployment>>,
    /// `<app>.<domain>`, with the limits of the deployment that takes most of its traffic.
    pub host: Arc<Host>,
}

impl App {
    /// The deployment the app host sends this request to: by weight, `roll` in `0..100`.
    pub fn released(&self, roll: u32) -> Option<&Arc<Deployment>> {
        let mut acc = 0;
        let weighted: Vec<&Arc<Deployment>> =
            self.deployments.values().filter(|d| d.weight > 0).collect();
        for d in &weighted {
            acc += d.weight;
            if roll < acc {
                return Some(d);
            }
        }
        weighted.last().copied()
    }

    /// Every host of this app, for the 404 page.
    pub fn hosts(&self, app: &str, domain: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.deployments.values().any(|d| d.weight > 0) {
            out.push(format!("{app}.{domain}"));
        }
        out.extend(
            self.deployments
                .keys()
                .map(|n| format!("{}.{domain}", wayline_core::url::deployment_label(app, *n))),
        );
        out
    }
}

/// Everything the proxy routes by.
#[derive(Debug, Default)]
pub struct Table {
    /// App hosts.
    pub apps: HashMap<String, App>,
}

/// What one table build hands the next: direct backends (their connection pools) and host
/// entries (their limiters' state and figures), by address and by host name.
#[derive(Debug, Default)]
pub struct Kept {
    direct: HashMap<String, Arc<Backend>>,
    hosts: HashMap<String, Arc<Host>>,
}

impl Kept {
    /// The host entry for `name` under `limits`: the previous one when they did not change,
    /// else a new one keeping its figures.
    fn host(
        &self,
        next: &mut HashMap<String, Arc<Host>>,
        name: String,
        limits: UrlLimits,
    ) -> Arc<Host> {
        if let Some(h) = next.get(&name) {
            return Arc::clone(h);
        }
        let h = match self.hosts.get(&name) {
            Some(old) if old.limits == limits => Arc::clone(old),
            Some(old) => Arc::new(Host::new(name.clone(), limits, Arc::clone(&old.stats))),
            None => Arc::new(Host::new(name.clone(), limits, Arc::default())),
        };
        next.insert(name, Arc::clone(&h));
        h
    }
}

impl Table {
    /// The app host and deployment with this id.
    pub fn find(&self, deployment_id: &str) -> Option<(&str, &Arc<Deployment>)> {
        self.apps.iter().find_map(|(host, app)| {
            app.deployments
                .values()
                .find(|d| d.id == deployment_id)
                .map(|d| (host.as_str(), d))
        })
    }

    /// Every host entry: each app host, then its deployments' hosts.
    pub fn hosts(&self) -> impl Iterator<Item = &Arc<Host>> {
        self.apps
            .values()
            .flat_map(|a| std::iter::once(&a.host).chain(a.deployments.values().map(|d| &d.host)))
    }

    /// Builds the table from the server's routes, the live tunnels (by deployment id) and what
    /// the previous table kept (so connection pools, limiters and figures survive); limits the
    /// routes leave unset take `defaults`.
    pub fn build(
        routes: &[UrlRoute],
        tunnels: &HashMap<String, Vec<Arc<Backend>>>,
        prev: &mut Kept,
        defaults: UrlLimits,
        domain: &str,
    ) -> Self {
        let mut deployments: HashMap<String, BTreeMap<u64, Arc<Deployment>>> = HashMap::new();
        let mut kept = HashMap::new();
        let mut hosts = HashMap::new();
        for r in routes {
            let backends = match tunnels.get(&r.deployment_id) {
                Some(t) if !t.is_empty() => t.clone(),
                _ if !r.address.is_empty() => {
                    let b = prev
                        .direct
                        .remove(&r.address)
                        .or_else(|| kept.get(&r.address).cloned())
                        .unwrap_or_else(|| Arc::new(Backend::direct(&r.address)));
                    kept.insert(r.address.clone(), Arc::clone(&b));
                    vec![b]
                }
                _ => Vec::new(),
            };
            let name = format!(
                "{}.{domain}",
                wayline_core::url::deployment_label(&r.host, r.sequence)
            );
            let host = prev.host(&mut hosts, name, r.limits.or(defaults));
            deployments.entry(r.host.clone()).or_default().insert(
                r.sequence,
                Arc::new(Deployment {
                    sequence: r.sequence,
                    id: r.deployment_id.clone(),
                    backends,
                    weight: r.weight.min(100),
                    host,
                    next: AtomicUsize::new(0),
                }),
            );
        }
        prev.direct = kept;
        let apps = deployments
            .into_iter()
            .map(|(app, deployments)| {
                // The app host follows the deployment that takes most of it (the newest when
                // none is released).
                let leader = deployments
                    .values()
                    .max_by_key(|d| (d.weight, d.sequence))
                    .map_or(defaults, |d| d.host.limits);
                let host = prev.host(&mut hosts, format!("{app}.{domain}"), leader);
                (app, App { deployments, host })
            })
            .collect();
        prev.hosts = hosts;
        Self { apps }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: &str, seq: u64, address: &str, weight: u32) -> UrlRoute {
        UrlRoute {
            host: host.into(),
            sequence: seq,
            deployment_id: format!("d{seq}"),
            address: address.into(),
            weight,
            ..UrlRoute::default()
        }
    }

    #[test]
    fn routes_become_apps_with_weights_and_hosts() {
        let routes = vec![
            route("web", 1, "http://127.0.0.1:1", 90),
            route("web", 2, "http://127.0.0.1:2", 10),
            route("api", 1, "", 0),
        ];
        let mut kept = Kept::default();
        let t = Table::build(
            &routes,
            &HashMap::new(),
            &mut kept,
            UrlLimits::default(),
            "localhost",
        );
        let web = &t.apps["web"];
        assert_eq!(web.released(0).unwrap().sequence, 1);
        assert_eq!(web.released(89).unwrap().sequence, 1);
        assert_eq!(web.released(90).unwrap().sequence, 2);
        assert_eq!(web.released(99).unwrap().sequence, 2);
        assert_eq!(
            web.hosts("web", "localhost"),
            ["web.localhost", "web--v1.localhost", "web--v2.localhost"]
        );
        let api = &t.apps["api"];
        assert!(api.released(0).is_none());
        assert!(api.deployments[&1].pick().is_none());
        assert_eq!(
            kept.direct.len(),
            2,
            "direct backends are kept for the next build"
        );
        assert_eq!(kept.hosts.len(), 5, "web, web--v1, web--v2, api, api--v1");
        let again = Table::build(
            &routes,
            &HashMap::new(),
            &mut kept,
            UrlLimits::default(),
            "localhost",
        );
        assert!(Arc::ptr_eq(&again.apps["web"].host, &t.apps["web"].host));
        assert!(Arc::ptr_eq(
            &again.apps["web"].deployments[&1].backends[0],
            &t.apps["web"].deployments[&1].backends[0]
        ));
    }
}
