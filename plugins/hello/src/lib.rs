//! The example plugin, and the template behind `devpulse plugin new`: one of
//! everything the contract offers, on one screen.
//!
//! - `POST /greetings` greets someone: counts it in storage, records a metric
//!   and emits a `{NAME}.greeted` event.
//! - `GET /greetings/{name}` reads the count back.
//! - `GET /whoami` says who is calling, through the `identity` import.
//! - It subscribes to its own `{NAME}.greeted` events and counts them;
//!   `GET /stats` shows the count.
//! - Its `heartbeat` schedule records a metric once an hour per org.
//!
//! Routes are mounted at `/api/v1/{NAME}/...`; their schemas come from the types below.

use devpulse_sdk::prelude::*;

/// The plugin's name: its URL prefix and the prefix of its event kinds and metrics.
pub const NAME: &str = env!("CARGO_PKG_NAME");

pub struct Hello;

impl Plugin for Hello {
    fn manifest() -> Manifest {
        Manifest::new(NAME, env!("CARGO_PKG_VERSION"), "Greets people and shows the whole plugin contract")
            .subscribe(&format!("{NAME}.greeted"))
            .schedule("heartbeat", 3600)
    }

    fn routes() -> Vec<Route> {
        vec![
            post("/greetings", greet)
                .summary("Greet someone")
                .description("Counts the greeting, records the `greetings` metric and emits a `greeted` event."),
            get("/greetings/{name}", tally).summary("How many times someone was greeted in the caller's org"),
            get("/whoami", whoami).summary("Who is calling, read through the `identity` import"),
            get("/stats", stats).summary("How many `greeted` events this plugin has handled in the org"),
        ]
    }

    fn on_event(event: Event) -> Result<()> {
        let seen = storage::update("events-seen", 0u64, |seen| *seen += 1)?;
        log::info(&format!("saw {} {} ({seen} so far)", event.kind, event.id));
        Ok(())
    }

    fn on_tick(_schedule: &str, now: Timestamp, _principal: Principal) -> Result<()> {
        metrics::record(&format!("{NAME}.heartbeat"), &[], now, 1.0)
    }
}

/// Someone to greet.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Who {
    /// Their name, as it should appear in the greeting.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
}

/// Whose greetings to count.
#[derive(Deserialize, JsonSchema)]
pub struct Whose {
    /// Who was greeted.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
}

/// A greeting and how many times its addressee was greeted in the org.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Greeting {
    pub message: String,
    pub name: String,
    pub times_greeted: u64,
}

/// The caller, as the org knows them.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Caller {
    pub display_name: String,
    pub time_zone: String,
}

fn greet(call: Call<(), Who>) -> Result<Greeting> {
    let name = call.body.name;
    let times_greeted = storage::update(&format!("greeted/{name}"), 0u64, |count| *count += 1)?;
    metrics::record(&format!("{NAME}.greetings"), &[("name", &name)], now(), 1.0)?;
    events::emit(&format!("{NAME}.greeted"), &serde_json::json!({ "name": name }))?;
    greeting(name, times_greeted)
}

fn tally(call: Call<Whose>) -> Result<Greeting> {
    let name = call.params.name;
    let times_greeted = storage::get(&format!("greeted/{name}"))?.unwrap_or(0);
    greeting(name, times_greeted)
}

fn whoami(call: Call) -> Result<Caller> {
    let user = identity::user(&call.principal.user_id)?.ok_or_else(|| Error::not_found("the caller's user is gone"))?;
    Ok(Caller { display_name: user.display_name, time_zone: user.time_zone })
}

/// What the event handler has done.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Stats {
    pub events_seen: u64,
}

fn stats(_call: Call) -> Result<Stats> {
    Ok(Stats { events_seen: storage::get("events-seen")?.unwrap_or(0) })
}

/// The salutation is an operator setting: `[plugins.NAME.settings] greeting = "Howdy"`.
fn greeting(name: String, times_greeted: u64) -> Result<Greeting> {
    let salutation = config::get::<String>("greeting")?.unwrap_or_else(|| "Hello".into());
    Ok(Greeting { message: format!("{salutation}, {name}!"), name, times_greeted })
}

devpulse_sdk::export_plugin!(Hello);
