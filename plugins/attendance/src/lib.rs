//! Attendance: work sessions from clock-in and clock-out, idle spans and
//! editor heartbeats, uploaded as they happen or in batches after being
//! offline; daily figures in each person's time zone, split at local
//! midnight in real elapsed time (a day across a DST change lasts 23 or 25
//! hours); working-time rules per org. No keystrokes, file names or
//! screenshots: of a heartbeat only its time, project, language, category and
//! write flag are ever kept.
//!
//! Every input is an event in the log (`attendance.recorded`,
//! `attendance.corrected`, `attendance.rules.updated`, each about its person
//! so the log shows it to them alone) and every figure is this plugin's fold
//! of them: a rebuild recomputes history, and late or out-of-order input
//! re-folds exactly the days it touches. See `docs/metrics.md` for the
//! definitions and `docs/privacy.md` for who sees what.

pub mod fold;
pub mod record;
pub mod routes;
pub mod rules;
pub mod store;
pub mod timeline;
pub mod wakatime;

use devpulse_sdk::prelude::*;

pub struct Attendance;

/// How often sessions silent for too long are closed.
const CLOSE_SILENT_EVERY_S: u32 = 900;

const WAKATIME: &str = "/wakatime/users/current";

impl Plugin for Attendance {
    fn manifest() -> Manifest {
        Manifest::new(
            "attendance",
            env!("CARGO_PKG_VERSION"),
            "Work sessions, idle time and DST-correct days from clock events, offline sync and editor heartbeats",
        )
        .subscribe(fold::RECORDED)
        .subscribe(fold::CORRECTED)
        .subscribe(fold::RULES_UPDATED)
        .schedule("close-silent", CLOSE_SILENT_EVERY_S)
    }

    fn routes() -> Vec<Route> {
        vec![
            post("/clock-in", routes::clock_in).summary("Clock in").description(
                "Opens a session now, or at `at`. One session is open per person at a time: a second \
                 clock-in answers 409, naming the open session. An `at` older than the accepted age (30 \
                 days by default) or more than an hour ahead answers 409 too.",
            ),
            post("/clock-out", routes::clock_out)
                .summary("Clock out")
                .description("Closes the open session now, or at `at`; 409 when none is open, or for an `at` outside the accepted window."),
            get("/status", routes::status)
                .summary("The open session and today's time so far")
                .description("Today is the caller's local date; an open session counts until now."),
            post("/sync", routes::sync).status(200).summary("Upload records made offline").description(
                "Up to 1,000 records in any order: `clock_in`, `clock_out`, `idle` (with `until`) and \
                 `heartbeat`. Each is answered `accepted`, `duplicate` (its id was taken before: nothing \
                 changes, so a batch can be sent again safely) or `rejected` with the reason (older than \
                 the configured age, 30 days by default; more than an hour in the future; an idle span \
                 without its end). The days the records touch are folded again, whatever their order.",
            ),
            post(&format!("{WAKATIME}/heartbeats.bulk"), wakatime::bulk)
                .summary("WakaTime: upload heartbeats")
                .description(
                    "WakaTime's bulk endpoint: a JSON array of heartbeats, answered `201` with one \
                     `[answer, status]` per heartbeat. Send the key as `Authorization: Basic \
                     base64(<token>)` with a token in UUID form. Only time, project, language, category \
                     and write flag are kept; the file path and the rest are dropped unread.",
                ),
            post(&format!("{WAKATIME}/heartbeats"), wakatime::single).summary("WakaTime: upload one heartbeat"),
            get(&format!("{WAKATIME}/statusbar/today"), wakatime::today)
                .summary("WakaTime: today's coding time for an editor's status bar"),
            get("/days", routes::days).summary("Daily figures and the rules each day breaks").description(
                "Per local date in the person's time zone: worked, idle, active and break seconds, the \
                 sessions (split at local midnight), first in and last out, corrections, and the rules \
                 broken under the org's rules now. Developers read their own days; managers and above \
                 anyone's in the org. At most 366 dates per answer (`truncated` says when the range held more).",
            ),
            get("/sessions", routes::sessions).summary("Work sessions, paginated"),
            get("/team", routes::team)
                .min_role(Role::Manager)
                .summary("Per-person totals and rule breaches over a range")
                .description("Totals only: nobody's heartbeats, nor the records behind the figures."),
            get("/heartbeats", routes::heartbeats)
                .summary("The caller's own heartbeats")
                .description("Heartbeats are their owner's alone: naming anyone else is refused, managers included."),
            post("/corrections", routes::correct).summary("Correct one's own record, with a reason").description(
                "Adds a missed clock-in, clock-out or idle span, or removes a record (by the id and time \
                 its session shows). The correction is kept in history and shown on its day.",
            ),
            get("/rules", routes::get_rules).min_role(Role::Admin).summary("The org's working-time rules"),
            put("/rules", routes::put_rules).min_role(Role::Admin).summary("Set the org's working-time rules"),
        ]
    }

    fn on_event(event: Event) -> Result<()> {
        let now = now();
        match event.kind.as_str() {
            fold::RECORDED => fold::on_recorded(event.json()?, now),
            fold::CORRECTED => fold::on_corrected(event.json()?, now),
            fold::RULES_UPDATED => fold::on_rules(event.json()?),
            _ => Ok(()),
        }
    }

    fn on_tick(_schedule: &str, now: Timestamp, _principal: Principal) -> Result<()> {
        fold::close_silent(now)
    }
}

devpulse_sdk::export_plugin!(Attendance);
