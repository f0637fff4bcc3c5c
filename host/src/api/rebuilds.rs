//! `/api/v1/plugins/{name}/rebuild`: recomputing a plugin's state for the
//! caller's org from the start of the log, beside the live state.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::problem::Problem;
use crate::audit::{self, Entry};
use crate::auth::Role;
use crate::bus::delivery::cursors;
use crate::bus::generations::{self, RebuildError};
use crate::bus::log;
use poem::http::StatusCode;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

#[derive(Tags)]
enum RebuildTag {
    /// Rebuilding a plugin's storage and metrics from the event log.
    Rebuilds,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum RebuildStatus {
    /// No rebuild ever ran for this plugin in this org.
    Never,
    /// Replaying the log into the new generation; reads still see the live one.
    Running,
    /// The rebuilt generation caught up and is live.
    Done,
}

/// A rebuild's progress.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RebuildView {
    pub plugin: String,
    pub status: RebuildStatus,
    /// The generation reads and requests use.
    pub live_generation: i64,
    /// The generation being written, while running.
    pub building_generation: Option<i64>,
    /// Log position the rebuild has handled up to.
    pub position: i64,
    /// The log's head when the rebuild started.
    pub target: Option<i64>,
    /// `position / target`, capped at 1.
    pub progress: f64,
    /// Events of the org the rebuild has handled, while running.
    pub events_done: Option<u64>,
    /// Events of the org it has still to handle up to the target, while running.
    pub events_left: Option<u64>,
    /// Events handled per second since it started, while running.
    pub events_per_second: Option<f64>,
    /// When it should reach the target at that rate, while running and once it has handled some.
    pub eta: Option<chrono::DateTime<chrono::Utc>>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(ApiResponse)]
pub enum StartResponse {
    /// The rebuild started.
    #[oai(status = 202)]
    Started(Json<RebuildView>),
}

pub struct RebuildsApi {
    pub state: AppState,
}

/// How fast a running rebuild goes.
struct Pace {
    done: u64,
    left: u64,
    per_second: f64,
    eta: Option<chrono::DateTime<chrono::Utc>>,
}

impl RebuildsApi {
    /// Counts the org's events the plugin subscribes to: handled (up to
    /// `position`) and left (up to `target`), and the rate since `started_at`.
    async fn pace(&self, name: &str, org: &str, position: i64, target: i64, started_at: i64) -> Result<Pace, ApiError> {
        let db = self.state.runtime.reader();
        let subscriptions = self.state.runtime.registry().get(name).map(|plugin| plugin.manifest.subscriptions.clone());
        let subscriptions = subscriptions.unwrap_or_default();
        let after = |from: i64| {
            let subscriptions = &subscriptions;
            async move { log::backlog(db, org, from, subscriptions).await.map(|(count, _)| count) }
        };
        let (all, after_position, after_target) = (after(0).await?, after(position).await?, after(target).await?);
        let done = all.saturating_sub(after_position);
        let left = after_position.saturating_sub(after_target);
        let now = crate::store::now_ms();
        let elapsed_s = ((now - started_at).max(1)) as f64 / 1000.0;
        let per_second = done as f64 / elapsed_s;
        let eta = (per_second > 0.0)
            .then(|| now + (left as f64 / per_second * 1000.0) as i64)
            .and_then(chrono::DateTime::from_timestamp_millis);
        Ok(Pace { done, left, per_second, eta })
    }

    fn check_plugin(&self, name: &str) -> Result<(), ApiError> {
        let plugin = self
            .state
            .runtime
            .registry()
            .get(name)
            .ok_or_else(|| ApiError::not_found(format!("no plugin named {name}")))?;
        if plugin.manifest.subscriptions.is_empty() {
            return Err(ApiError::bad_request(format!("{name} subscribes to no events: there is nothing to rebuild")));
        }
        Ok(())
    }

    async fn view(&self, name: &str, org: &str) -> Result<RebuildView, ApiError> {
        let db = self.state.runtime.db();
        let Some(row) = generations::get(db, name, org).await? else {
            return Ok(RebuildView {
                plugin: name.to_owned(),
                status: RebuildStatus::Never,
                live_generation: 0,
                building_generation: None,
                position: 0,
                target: None,
                progress: 0.0,
                events_done: None,
                events_left: None,
                events_per_second: None,
                eta: None,
                started_at: None,
                finished_at: None,
            });
        };
        let generation = row.building.unwrap_or(row.live);
        let position = cursors::find(db, name, org, generation).await?.map_or(0, |cursor| cursor.position);
        let target = row.rebuild_target_seq;
        let progress = match (row.building, target) {
            (None, _) => 1.0,
            (Some(_), Some(target)) if target > 0 => (position as f64 / target as f64).min(1.0),
            (Some(_), _) => 0.0,
        };
        let pace = match (row.building, target, row.rebuild_started_at) {
            (Some(_), Some(target), Some(started_at)) => {
                Some(self.pace(name, org, position, target, started_at).await?)
            }
            _ => None,
        };
        Ok(RebuildView {
            events_done: pace.as_ref().map(|pace| pace.done),
            events_left: pace.as_ref().map(|pace| pace.left),
            events_per_second: pace.as_ref().map(|pace| pace.per_second),
            eta: pace.and_then(|pace| pace.eta),
            plugin: name.to_owned(),
            status: if row.building.is_some() { RebuildStatus::Running } else { RebuildStatus::Done },
            live_generation: row.live,
            building_generation: row.building,
            position: if row.building.is_some() { position } else { position.max(target.unwrap_or(0)) },
            target,
            progress,
            started_at: row.rebuild_started_at.and_then(chrono::DateTime::from_timestamp_millis),
            finished_at: row.rebuild_finished_at.and_then(chrono::DateTime::from_timestamp_millis),
        })
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "RebuildTag::Rebuilds")]
impl RebuildsApi {
    /// Rebuilds the plugin's storage and metrics for the caller's org from the
    /// start of the log, with the plugin version loaded now, into a new
    /// generation. The live generation keeps serving until the new one has
    /// caught up; then reads switch over at once. Events the rebuild would
    /// emit are dropped (they were emitted the first time). Writes made through
    /// the plugin's routes are not in the log and do not survive a rebuild.
    #[oai(path = "/plugins/:name/rebuild", method = "post", operation_id = "startRebuild")]
    async fn start(&self, auth: BearerAuth, name: Path<String>) -> Result<StartResponse, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        self.check_plugin(&name.0)?;
        let db = self.state.runtime.db();
        let row = generations::start_rebuild(db, &name.0, &principal.org_id).await.map_err(|err| match err {
            RebuildError::Running(_) => {
                ApiError::Conflict(Json(Problem::new(StatusCode::CONFLICT, "conflict", err.to_string())))
            }
            RebuildError::Store(err) => ApiError::unavailable(err),
        })?;
        audit::record(db, Entry::by(&principal, "plugin.rebuild", &format!("plugin/{}", name.0))).await?;
        tracing::info!(
            plugin = name.0,
            org = principal.org_id,
            generation = row.building,
            target = row.rebuild_target_seq,
            "rebuild started"
        );
        Ok(StartResponse::Started(Json(self.view(&name.0, &principal.org_id).await?)))
    }

    /// The progress of the plugin's latest rebuild in the caller's org.
    #[oai(path = "/plugins/:name/rebuild", method = "get", operation_id = "getRebuild")]
    async fn progress(&self, auth: BearerAuth, name: Path<String>) -> Result<Json<RebuildView>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        self.check_plugin(&name.0)?;
        Ok(Json(self.view(&name.0, &principal.org_id).await?))
    }
}
