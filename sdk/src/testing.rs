//! An in-memory host for native unit tests: `cargo test` runs a plugin's
//! routes, events and ticks with no wasm and no server.
//!
//! It keeps what the real host keeps (documents, metric points, emitted
//! events, open alerts, logs) and keeps its promise that a failed call commits nothing. It
//! checks a route's minimum role like the real host; it does not validate
//! parameters and bodies against their schemas (the derived decoding still
//! refuses input of the wrong shape).
//!
//! ```ignore
//! let host = TestHost::<Hello>::new();
//! let response = host.post("/greetings", json!({"name": "Ada"}))?;
//! assert_eq!(response.status, 201);
//! assert_eq!(host.document::<u64>("greeted/Ada"), Some(1));
//! ```

use crate::bindings::devpulse::plugin::alerts::Alert;
use crate::bindings::devpulse::plugin::http::{IncomingResponse, OutgoingRequest};
use crate::bindings::devpulse::plugin::identity::User;
use crate::bindings::devpulse::plugin::log::Level;
use crate::bindings::devpulse::plugin::metrics::Point;
use crate::{Error, Event, Manifest, Method, Plugin, Principal, Request, Result, Role, Timestamp};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::rc::Rc;

type Responder = Box<dyn FnMut(&OutgoingRequest) -> Result<IncomingResponse>>;

/// What a call may change; copied before each call and put back if it fails.
#[derive(Clone, Default)]
struct Data {
    documents: BTreeMap<String, String>,
    points: Vec<Point>,
    /// Points recorded under a key, the latest per key.
    keyed: BTreeMap<String, Point>,
    emitted: Vec<(String, Value)>,
    /// Open alerts by key.
    alerts: BTreeMap<String, Alert>,
    logs: Vec<(Level, String)>,
}

#[derive(Default)]
struct State {
    data: Data,
    config: HashMap<String, String>,
    users: Vec<User>,
    http: Option<Responder>,
    /// Kubernetes objects by `apiVersion/kind/namespace/name`: outside `Data`, since
    /// the real host's calls reach the cluster at once and a failed call does not undo them.
    kube: BTreeMap<String, Value>,
    /// Pods' logs by `namespace/pod`, as [`TestHost::set_pod_log`] wrote them.
    pod_logs: BTreeMap<String, String>,
    next_id: u64,
}

thread_local! {
    /// The host serving the call in progress on this thread.
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

/// An in-memory host running plugin `P` as one caller (org `org-1`, user
/// `user-1`, role `developer` unless changed).
pub struct TestHost<P> {
    state: Rc<RefCell<State>>,
    principal: Principal,
    plugin: PhantomData<P>,
}

/// A route's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResponse {
    pub status: u16,
    pub body: Option<Value>,
}

impl TestResponse {
    /// The body parsed into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.body.clone().unwrap_or(Value::Null)).map_err(Error::invalid)
    }
}

impl<P: Plugin> Default for TestHost<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Plugin> TestHost<P> {
    pub fn new() -> Self {
        TestHost {
            state: Rc::default(),
            principal: Principal { user_id: "user-1".into(), org_id: "org-1".into(), role: Role::Developer },
            plugin: PhantomData,
        }
    }

    /// Calls made from now on come from a caller with `role`.
    pub fn with_role(mut self, role: Role) -> Self {
        self.principal.role = role;
        self
    }

    /// The same host (its storage, points, events and users), called by
    /// `user_id` with `role`: for tests of what one person may see of another's.
    pub fn as_caller(&self, user_id: &str, role: Role) -> Self {
        TestHost {
            state: self.state.clone(),
            principal: Principal { user_id: user_id.into(), org_id: self.principal.org_id.clone(), role },
            plugin: PhantomData,
        }
    }

    /// Sets an operator setting, as `[plugins.NAME.settings]` would.
    pub fn with_config(self, key: &str, value: impl Serialize) -> Self {
        let text = serde_json::to_string(&value).expect("a setting serialises to JSON");
        self.state.borrow_mut().config.insert(key.into(), text);
        self
    }

    /// Adds a user to the org, for the `identity` helpers.
    pub fn with_user(self, user: User) -> Self {
        self.state.borrow_mut().users.push(user);
        self
    }

    /// Answers the plugin's outbound HTTP requests; without it they are `denied`.
    pub fn with_http(self, responder: impl FnMut(&OutgoingRequest) -> Result<IncomingResponse> + 'static) -> Self {
        self.state.borrow_mut().http = Some(Box::new(responder));
        self
    }

    /// Who the calls come from.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The manifest as the host would read it, routes included.
    pub fn manifest(&self) -> Manifest {
        crate::manifest::describe::<P>()
    }

    pub fn get(&self, path: &str) -> Result<TestResponse> {
        self.request(Method::Get, path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Result<TestResponse> {
        self.request(Method::Post, path, Some(body))
    }

    /// Calls the route matching `method` and `path` (which may carry a `?query`).
    pub fn request(&self, method: Method, path: &str, body: Option<Value>) -> Result<TestResponse> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let routes = P::routes();
        let (route, path_params) = routes
            .iter()
            .find_map(|route| {
                (route.method() == method).then(|| matches(route.path(), path)).flatten().map(|p| (route, p))
            })
            .ok_or_else(|| Error::not_found(format!("no route matches {path}")))?;
        if (self.principal.role as u8) < (route.required_role() as u8) {
            return Err(Error::Denied(format!("needs the {:?} role", route.required_role())));
        }
        let request = Request {
            method,
            path: path.into(),
            route: route.path().into(),
            path_params,
            query: serde_urlencoded::from_str(query).map_err(Error::invalid)?,
            headers: Vec::new(),
            body: body.map(|body| body.to_string()),
            principal: self.principal.clone(),
        };
        let response = self.call(|| crate::routes::dispatch(routes, request))?;
        let body = response.body.map(|text| serde_json::from_str(&text)).transpose().map_err(Error::internal)?;
        Ok(TestResponse { status: response.status, body })
    }

    /// Delivers an event of `kind` with `payload`, as if the log had it.
    pub fn event(&self, kind: &str, payload: Value) -> Result<()> {
        self.event_from("test", kind, payload)
    }

    /// Delivers what the plugin's watch `watch` would: `change` (`applied` or
    /// `deleted`) of `object`, from the host (source `kube`).
    pub fn kube_event(&self, watch: &str, change: &str, object: Value) -> Result<()> {
        let kind = format!("kube.{}.{watch}", P::manifest().name);
        self.event_from("kube", &kind, serde_json::json!({"type": change, "object": object}))
    }

    fn event_from(&self, source: &str, kind: &str, payload: Value) -> Result<()> {
        let event = Event {
            id: self.next_id("event"),
            source: source.into(),
            kind: kind.into(),
            occurred_at: crate::now(),
            payload: payload.to_string(),
            cause: None,
            principal: self.principal.clone(),
        };
        self.call(|| P::on_event(event))
    }

    /// Delivers the emitted events the plugin subscribes to, in order, and
    /// returns how many it handled. Events they emit in turn wait for the next call.
    pub fn deliver_emitted(&self) -> Result<usize> {
        let subscriptions = P::manifest().subscriptions;
        let emitted = std::mem::take(&mut self.state.borrow_mut().data.emitted);
        let wanted: Vec<_> =
            emitted.into_iter().filter(|(kind, _)| subscriptions.iter().any(|p| kind_matches(p, kind))).collect();
        for (kind, payload) in &wanted {
            self.event(kind, payload.clone())?;
        }
        Ok(wanted.len())
    }

    /// Runs the schedule `name` as of `now`.
    pub fn tick(&self, name: &str, now: Timestamp) -> Result<()> {
        let principal = self.principal.clone();
        self.call(|| P::on_tick(name, now, principal))
    }

    /// The stored document at `key`, parsed into `T`.
    pub fn document<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let text = self.state.borrow().data.documents.get(key).cloned()?;
        serde_json::from_str(&text).ok()
    }

    /// Every stored document as `(key, JSON text)`, in key order.
    pub fn documents(&self) -> Vec<(String, String)> {
        self.state.borrow().data.documents.iter().map(|(key, text)| (key.clone(), text.clone())).collect()
    }

    /// Every metric point recorded by successful calls: unkeyed ones oldest
    /// first, then the latest point of each key in key order.
    pub fn points(&self) -> Vec<Point> {
        let data = &self.state.borrow().data;
        data.points.iter().chain(data.keyed.values()).cloned().collect()
    }

    /// Events emitted by successful calls and not yet delivered: `(kind, payload)`.
    pub fn emitted(&self) -> Vec<(String, Value)> {
        self.state.borrow().data.emitted.clone()
    }

    /// Alerts raised by successful calls and not resolved since, in key order.
    pub fn alerts(&self) -> Vec<Alert> {
        self.state.borrow().data.alerts.values().cloned().collect()
    }

    /// Kubernetes objects the plugin applied and did not delete, in key order.
    pub fn kube_objects(&self) -> Vec<Value> {
        self.state.borrow().kube.values().cloned().collect()
    }

    /// What a pod's containers wrote, for `kube::logs`.
    pub fn set_pod_log(&self, namespace: &str, pod: &str, text: &str) {
        self.state.borrow_mut().pod_logs.insert(format!("{namespace}/{pod}"), text.to_owned());
    }

    /// Log lines written by successful calls.
    pub fn logs(&self) -> Vec<String> {
        self.state.borrow().data.logs.iter().map(|(_, line)| line.clone()).collect()
    }

    /// Runs `call` with this host serving the imports, as one call of the
    /// plugin (a failed call's writes are undone): for testing a plugin's own
    /// functions that use the host, such as its settings.
    pub fn call<T>(&self, call: impl FnOnce() -> Result<T>) -> Result<T> {
        let before = self.state.borrow().data.clone();
        CURRENT.with(|current| *current.borrow_mut() = Some(self.state.clone()));
        let outcome = call();
        CURRENT.with(|current| *current.borrow_mut() = None);
        if outcome.is_err() {
            self.state.borrow_mut().data = before;
        }
        outcome
    }

    fn next_id(&self, what: &str) -> String {
        let mut state = self.state.borrow_mut();
        state.next_id += 1;
        format!("{what}-{}", state.next_id)
    }
}

/// Path parameters when `path` fits `template` (`/greetings/{name}`).
fn matches(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let template: Vec<&str> = template.trim_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_matches('/').split('/').collect();
    if template.len() != path.len() {
        return None;
    }
    let mut params = Vec::new();
    for (expected, actual) in template.iter().zip(&path) {
        match expected.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
            Some(name) => params.push((name.to_string(), actual.to_string())),
            None if expected == actual => {}
            None => return None,
        }
    }
    Some(params)
}

/// The host's subscription patterns: a kind, `prefix.*` or `*`.
fn kind_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

/// Runs `action` on the host serving the current call.
fn with_state<T>(action: impl FnOnce(&mut State) -> T) -> T {
    CURRENT.with(|current| {
        let current = current.borrow();
        let state = current.as_ref().expect("SDK imports run natively only inside a TestHost call");
        action(&mut state.borrow_mut())
    })
}

/// The imports, with the signatures the WIT bindings have.
pub(crate) mod imports {
    pub mod storage {
        use super::super::with_state;
        use crate::Result;
        pub use crate::bindings::devpulse::plugin::storage::{Entry, Page};

        pub fn get(key: &str) -> Result<Option<String>> {
            Ok(with_state(|state| state.data.documents.get(key).cloned()))
        }

        pub fn put(key: &str, value: &str) -> Result<()> {
            with_state(|state| state.data.documents.insert(key.into(), value.into()));
            Ok(())
        }

        pub fn delete(key: &str) -> Result<bool> {
            Ok(with_state(|state| state.data.documents.remove(key).is_some()))
        }

        pub fn scan(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page> {
            // Cursors are hex keys, as the host makes them.
            let cursor = cursor
                .map(|cursor| hex::decode(cursor).map_err(|_| crate::Error::invalid("malformed cursor")))
                .transpose()?
                .map(|bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned());
            let cursor = cursor.as_deref();
            with_state(|state| {
                let after = cursor.unwrap_or(prefix);
                let mut entries: Vec<Entry> = state
                    .data
                    .documents
                    .range(after.to_string()..)
                    .filter(|(key, _)| cursor.is_none_or(|cursor| key.as_str() > cursor))
                    .take_while(|(key, _)| key.starts_with(prefix))
                    .take(limit as usize + 1)
                    .map(|(key, value)| Entry { key: key.clone(), value: value.clone() })
                    .collect();
                let more = entries.len() > limit as usize;
                entries.truncate(limit as usize);
                let next_cursor = if more { entries.last().map(|entry| hex::encode(&entry.key)) } else { None };
                Ok(Page { entries, next_cursor })
            })
        }

        pub fn count(prefix: &str) -> Result<u64> {
            Ok(with_state(|state| state.data.documents.keys().filter(|key| key.starts_with(prefix)).count() as u64))
        }
    }

    pub mod metrics {
        use super::super::with_state;
        pub use crate::bindings::devpulse::plugin::metrics::{Aggregation, Bucket, MetricQuery, Point, Series, Step};
        use crate::{Error, Result};
        use std::collections::BTreeMap;

        pub fn record(point: &Point) -> Result<()> {
            with_state(|state| state.data.points.push(point.clone()));
            Ok(())
        }

        pub fn put(key: &str, point: &Point) -> Result<()> {
            with_state(|state| state.data.keyed.insert(key.into(), point.clone()));
            Ok(())
        }

        /// Exact values (the real host's percentiles are within 1% of them);
        /// bucket edges in UTC only.
        pub fn query(query: &MetricQuery) -> Result<Vec<Series>> {
            if query.time_zone.as_deref().is_some_and(|zone| zone != "UTC") {
                return Err(Error::invalid("the test host buckets in UTC only"));
            }
            // Like the host: a range ending at or before its start holds no point.
            if query.since >= query.until {
                return Ok(Vec::new());
            }
            let points: Vec<Point> =
                with_state(|state| state.data.points.iter().chain(state.data.keyed.values()).cloned().collect());
            // (group labels, bucket start) -> values.
            let mut cells: BTreeMap<(Labels, i64), Vec<f64>> = BTreeMap::new();
            for point in points.iter().filter(|point| {
                point.name == query.name
                    && (query.since..query.until).contains(&point.time)
                    && query.filter.iter().all(|pair| point.labels.contains(pair))
            }) {
                let mut group: Vec<(String, String)> =
                    point.labels.iter().filter(|(label, _)| query.group_by.contains(label)).cloned().collect();
                group.sort();
                let start = match query.step {
                    None => query.since,
                    Some(step) => {
                        let width = match step {
                            Step::Hour => HOUR,
                            Step::Day => DAY,
                            Step::Week => WEEK,
                        };
                        // The epoch was a Thursday; weeks start on Monday.
                        let shift = if step == Step::Week { 4 * DAY } else { 0 };
                        ((point.time - shift).div_euclid(width) * width + shift).max(query.since)
                    }
                };
                cells.entry((group, start)).or_default().push(point.value);
            }
            let mut series: Vec<Series> = Vec::new();
            for ((labels, start), mut values) in cells {
                values.sort_by(f64::total_cmp);
                let bucket = Bucket { start, value: aggregate(query.aggregation, &values), count: values.len() as u64 };
                match series.last_mut() {
                    Some(last) if last.labels == labels => last.buckets.push(bucket),
                    _ => series.push(Series { labels, buckets: vec![bucket] }),
                }
            }
            Ok(series)
        }

        type Labels = Vec<(String, String)>;

        const HOUR: i64 = 3_600_000;
        const DAY: i64 = 24 * HOUR;
        const WEEK: i64 = 7 * DAY;

        /// `values` sorted; percentiles at rank ⌊q·(n−1)⌋, as the host defines them.
        fn aggregate(aggregation: Aggregation, values: &[f64]) -> f64 {
            let rank = |q: f64| values[(q * (values.len() - 1) as f64).floor() as usize];
            match aggregation {
                Aggregation::Count => values.len() as f64,
                Aggregation::Sum => values.iter().sum(),
                Aggregation::Avg => values.iter().sum::<f64>() / values.len() as f64,
                Aggregation::Min => values[0],
                Aggregation::Max => values[values.len() - 1],
                Aggregation::P50 => rank(0.5),
                Aggregation::P90 => rank(0.9),
                Aggregation::P95 => rank(0.95),
            }
        }
    }

    pub mod events {
        use super::super::with_state;
        use crate::{Error, Result};

        pub fn emit(kind: &str, payload: &str) -> Result<String> {
            let payload = serde_json::from_str(payload).map_err(Error::invalid)?;
            Ok(with_state(|state| {
                state.data.emitted.push((kind.into(), payload));
                state.next_id += 1;
                format!("event-{}", state.next_id)
            }))
        }

        /// The test host keeps no log to hide events from: a subject changes nothing here.
        pub fn emit_about(kind: &str, payload: &str, _subject: &str) -> Result<String> {
            emit(kind, payload)
        }
    }

    pub mod alerts {
        use super::super::with_state;
        pub use crate::bindings::devpulse::plugin::alerts::Alert;
        use crate::{Error, Result};

        /// Checks what the host checks before anything is staged.
        pub fn raise(alert: &Alert) -> Result<()> {
            if alert.key.is_empty() || alert.key.chars().count() > 256 {
                return Err(Error::InvalidInput("alert keys are 1 to 256 characters".into()));
            }
            if alert.summary.trim().is_empty() || alert.summary.chars().count() > 1024 {
                return Err(Error::InvalidInput("summaries are 1 to 1,024 characters, not blank".into()));
            }
            if let Some(details) = &alert.details {
                serde_json::from_str::<serde_json::Value>(details).map_err(Error::invalid)?;
            }
            with_state(|state| state.data.alerts.insert(alert.key.clone(), alert.clone()));
            Ok(())
        }

        pub fn resolve(key: &str) -> Result<bool> {
            Ok(with_state(|state| state.data.alerts.remove(key).is_some()))
        }
    }

    /// A cluster in memory: objects are kept as applied (no field managers,
    /// no org labels, no controllers) and picked by `key=value` selectors.
    pub mod kube {
        use super::super::with_state;
        pub use crate::bindings::devpulse::plugin::kube::{ObjectPage, ObjectRef, Selection};
        use crate::{Error, Result};
        use serde_json::Value;

        fn key(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
            format!("{api_version}/{kind}/{}/{name}", namespace.unwrap_or_default())
        }

        pub fn apply(object: &str, _force: bool) -> Result<String> {
            let value: Value = serde_json::from_str(object).map_err(Error::invalid)?;
            let text = |field: &Value| field.as_str().map(str::to_owned);
            let (Some(api_version), Some(kind), Some(name)) =
                (text(&value["apiVersion"]), text(&value["kind"]), text(&value["metadata"]["name"]))
            else {
                return Err(Error::InvalidInput("an object needs apiVersion, kind and metadata.name".into()));
            };
            let namespace = text(&value["metadata"]["namespace"]);
            with_state(|state| state.kube.insert(key(&api_version, &kind, namespace.as_deref(), &name), value));
            Ok(object.to_owned())
        }

        pub fn get(target: &ObjectRef) -> Result<Option<String>> {
            let key = key(&target.api_version, &target.kind, target.namespace.as_deref(), &target.name);
            Ok(with_state(|state| state.kube.get(&key).map(Value::to_string)))
        }

        pub fn list(selection: &Selection, cursor: Option<&str>, limit: u32) -> Result<ObjectPage> {
            let mut wanted = Vec::new();
            for term in selection.labels.split(',').filter(|t| !t.is_empty()) {
                let (label, value) = term.split_once('=').ok_or_else(|| {
                    Error::InvalidInput(format!("the test host picks by key=value selectors only, not {term:?}"))
                })?;
                wanted.push((label.to_owned(), value.to_owned()));
            }
            let prefix = key(&selection.api_version, &selection.kind, selection.namespace.as_deref(), "");
            let skip: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
            let matching: Vec<String> = with_state(|state| {
                state
                    .kube
                    .iter()
                    .filter(|(key, object)| {
                        key.starts_with(&prefix)
                            && wanted.iter().all(|(label, value)| object["metadata"]["labels"][label] == value.as_str())
                    })
                    .map(|(_, object)| object.to_string())
                    .collect()
            });
            let items: Vec<String> = matching.iter().skip(skip).take(limit as usize).cloned().collect();
            let next = skip + items.len();
            Ok(ObjectPage { items, cursor: (next < matching.len()).then(|| next.to_string()) })
        }

        pub fn delete(target: &ObjectRef) -> Result<bool> {
            let key = key(&target.api_version, &target.kind, target.namespace.as_deref(), &target.name);
            Ok(with_state(|state| state.kube.remove(&key).is_some()))
        }

        pub fn logs(pod: &ObjectRef, _container: Option<&str>, tail_lines: u32) -> Result<String> {
            let key = format!("{}/{}", pod.namespace.as_deref().unwrap_or_default(), pod.name);
            let text = with_state(|state| state.pod_logs.get(&key).cloned())
                .ok_or_else(|| Error::NotFound(format!("pod {} not found", pod.name)))?;
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(tail_lines as usize)..];
            Ok(tail.iter().map(|line| format!("{line}\n")).collect())
        }
    }

    pub mod config {
        use super::super::with_state;

        pub fn get(key: &str) -> Option<String> {
            with_state(|state| state.config.get(key).cloned())
        }
    }

    pub mod http {
        use super::super::with_state;
        pub use crate::bindings::devpulse::plugin::http::{IncomingResponse, OutgoingRequest};
        use crate::{Error, Result};

        pub fn fetch(request: &OutgoingRequest) -> Result<IncomingResponse> {
            with_state(|state| match state.http.as_mut() {
                Some(respond) => respond(request),
                None => Err(Error::Denied("this TestHost has no `with_http` responder".into())),
            })
        }
    }

    pub mod identity {
        use super::super::with_state;
        use crate::Result;
        pub use crate::bindings::devpulse::plugin::identity::{ExternalIdentity, User, UserPage};

        pub fn get_user(id: &str) -> Result<Option<User>> {
            Ok(with_state(|state| state.users.iter().find(|user| user.id == id).cloned()))
        }

        pub fn find_by_identity(provider: &str, login: &str) -> Result<Option<User>> {
            Ok(with_state(|state| {
                state
                    .users
                    .iter()
                    .find(|user| user.identities.iter().any(|id| id.provider == provider && id.login == login))
                    .cloned()
            }))
        }

        pub fn list_users(cursor: Option<&str>, limit: u32) -> Result<UserPage> {
            let limit = limit.max(1) as usize;
            Ok(with_state(|state| {
                let mut users: Vec<User> = state.users.clone();
                users.sort_by(|a, b| a.id.cmp(&b.id));
                let rest: Vec<User> =
                    users.into_iter().filter(|user| cursor.is_none_or(|c| user.id.as_str() > c)).collect();
                let next_cursor = (rest.len() > limit).then(|| rest[limit - 1].id.clone());
                UserPage { users: rest.into_iter().take(limit).collect(), next_cursor }
            }))
        }
    }

    pub mod log {
        use super::super::with_state;
        pub use crate::bindings::devpulse::plugin::log::Level;

        pub fn log(level: Level, message: &str) {
            with_state(|state| state.data.logs.push((level, message.into())));
        }
    }
}

/// Asserts that the committed file at `path` holds the JSON Schema of `T`
/// (as [`crate::schema::of`] derives it), for documents such as an event's
/// payload schema in `docs/events/`. With `DEVPULSE_UPDATE_DOCS=1` it writes
/// the file instead, so a change of the type and of its documentation land together.
pub fn assert_schema_committed<T: schemars::JsonSchema>(path: &std::path::Path) {
    let schema = crate::schema::of::<T>().unwrap_or(Value::Null);
    let text = serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n";
    if std::env::var_os("DEVPULSE_UPDATE_DOCS").is_some() {
        std::fs::write(path, &text).expect("write the schema");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is not the schema of the type; rerun with DEVPULSE_UPDATE_DOCS=1 and commit it",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::TestHost;
    use crate::prelude::*;
    use serde_json::json;

    /// Stores the keys it is given, then reads them back in pages of two.
    struct Pager;

    #[derive(Deserialize, JsonSchema)]
    struct Keys {
        keys: Vec<String>,
    }

    #[derive(Deserialize, JsonSchema)]
    struct Page {
        prefix: String,
        cursor: Option<String>,
    }

    impl Plugin for Pager {
        fn manifest() -> Manifest {
            Manifest::new("pager", "1.0.0", "test")
        }

        fn routes() -> Vec<Route> {
            vec![
                put("/keys", |call: Call<(), Keys>| {
                    call.body.keys.iter().try_for_each(|key| storage::put(key, &key.len()))?;
                    storage::count("")
                }),
                get("/page", |call: Call<Page>| {
                    let page = storage::scan::<usize>(&call.params.prefix, call.params.cursor.as_deref(), 2)?;
                    let keys: Vec<String> = page.entries.into_iter().map(|(key, _)| key).collect();
                    Ok(json!({"keys": keys, "next": page.next_cursor}))
                }),
                get("/all", |call: Call<Page>| Ok(storage::scan_all::<usize>(&call.params.prefix)?.len()))
                    .min_role(Role::Manager),
            ]
        }
    }

    #[test]
    fn scans_page_by_prefix_in_key_order() {
        let host = TestHost::<Pager>::new().with_role(Role::Manager);
        let keys = json!({"keys": ["a/3", "a/1", "b/1", "a/2", "a/4", "a/5"]});
        assert_eq!(host.request(Method::Put, "/keys", Some(keys)).unwrap().body, Some(json!(6)));
        let first = host.get("/page?prefix=a/").unwrap().body.unwrap();
        assert_eq!(first, json!({"keys": ["a/1", "a/2"], "next": hex::encode("a/2")}));
        let second = host.get(&format!("/page?prefix=a/&cursor={}", hex::encode("a/2"))).unwrap().body.unwrap();
        assert_eq!(second, json!({"keys": ["a/3", "a/4"], "next": hex::encode("a/4")}));
        let last = host.get(&format!("/page?prefix=a/&cursor={}", hex::encode("a/4"))).unwrap().body.unwrap();
        assert_eq!(last, json!({"keys": ["a/5"], "next": null}));
        assert_eq!(host.get("/all?prefix=a/").unwrap().body, Some(json!(5)));
    }

    #[test]
    fn roles_and_routes_are_checked_like_the_host() {
        let host = TestHost::<Pager>::new();
        assert!(matches!(host.get("/all?prefix=a"), Err(Error::Denied(_))), "developers may not");
        assert!(matches!(host.get("/nowhere"), Err(Error::NotFound(_))));
        assert!(matches!(host.get("/page"), Err(Error::InvalidInput(_))), "the prefix is required");
    }

    #[test]
    fn derived_params_know_path_query_and_optional() {
        let spec = get("/items/{prefix}", |_: Call<Page>| Ok(())).spec();
        let params: Vec<_> = spec.params.iter().map(|p| (p.name.as_str(), p.location, p.required)).collect();
        use crate::bindings::devpulse::plugin::types::ParamLocation::{Path, Query};
        assert_eq!(params, vec![("cursor", Query, false), ("prefix", Path, true)]);
        let cursor: serde_json::Value = serde_json::from_str(&spec.params[0].schema).unwrap();
        assert_eq!(cursor, json!({"type": "string"}), "an optional parameter is absent, never null");
        assert_eq!(spec.responses[0].schema, None, "`()` answers nothing");
    }
}
