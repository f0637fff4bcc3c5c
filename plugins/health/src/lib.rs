//! Health: team health rules over delivery, reviews, working time and the
//! platform itself, raised as alerts. Written with the SDK like any
//! third-party plugin: it reads only the events other plugins and the host
//! announce (`docs/events.md`), never their storage.
//!
//! Each event updates the facts it is about and evaluates the rules that can
//! depend on them; the `evaluate` schedule (every 5 minutes; operators may
//! change it under `[plugins.health.schedules]`) evaluates everything, for
//! conditions that become true with time. A condition raises one alert under a
//! stable key and resolves it when it clears. Rules and defaults: `docs/health.md`.

pub mod conditions;
pub mod evaluate;
pub mod facts;
pub mod routes;
pub mod rules;

use devpulse_sdk::prelude::*;

pub struct Health;

/// The schedule that evaluates everything.
pub const EVALUATE: &str = "evaluate";
const EVALUATE_EVERY_S: u32 = 300;

impl Plugin for Health {
    fn manifest() -> Manifest {
        [
            facts::PULL_UPDATED,
            facts::DEPLOYMENT_UPDATED,
            facts::DAY_UPDATED,
            facts::ATTENDANCE_RULES,
            "system.plugin.*",
            facts::DEAD_LETTERED,
            facts::BAD_SIGNATURE,
            facts::LAGGING,
            facts::WORKSPACE_UPDATED,
            rules::UPDATED,
        ]
        .into_iter()
        .fold(
            Manifest::new(
                "health",
                env!("CARGO_PKG_VERSION"),
                "Team health rules over reviews, delivery, working time and the platform, raised as alerts",
            ),
            |manifest, kind| manifest.subscribe(kind),
        )
        .schedule(EVALUATE, EVALUATE_EVERY_S)
    }

    fn routes() -> Vec<Route> {
        vec![
            get("/rules", routes::get_rules)
                .min_role(Role::Admin)
                .summary("The org's health rules")
                .description("Every rule with its switch and thresholds; the defaults until an admin sets them."),
            put("/rules", routes::put_rules).min_role(Role::Admin).summary("Set the org's health rules").description(
                "Replaces the rules; a rule left out keeps its default. Every condition is evaluated again \
                 under the new rules once the change is folded: alerts of rules switched off or thresholds \
                 no longer met resolve, newly met ones fire.",
            ),
            get("/overview", routes::overview).summary("Open health conditions per team and per person").description(
                "Counts of open conditions by rule, for the org as a team and per person. A developer sees \
                 the conditions about them; managers and above see all. Each condition is an alert \
                 (`GET /api/v1/alerts?source=health`) naming its rule, figures and provenance.",
            ),
        ]
    }

    fn on_event(event: Event) -> Result<()> {
        let touched = facts::fold(&event)?;
        evaluate::touched(&touched, now())
    }

    fn on_tick(_schedule: &str, now: Timestamp, _principal: Principal) -> Result<()> {
        facts::prune(now)?;
        evaluate::everything(now)
    }
}

devpulse_sdk::export_plugin!(Health);
