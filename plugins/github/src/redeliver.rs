//! Gap repair: GitHub never retries a failed webhook delivery by itself, but
//! keeps every delivery for 3 days and redelivers one when asked. The
//! `redeliver` schedule lists the recent deliveries of each hook the org
//! watches (`PUT /redeliver`) and asks GitHub to redeliver those that never
//! succeeded, a few times at most; a redelivered event is deduplicated by its
//! delivery id like any other.

use crate::rest::{Api, Reply};
use crate::routes::rfc3339;
use crate::settings::Settings;
use devpulse_sdk::prelude::*;
use std::collections::BTreeMap;

pub const SCHEDULE: &str = "redeliver";
/// Every 10 minutes: a delivery is redeliverable for 3 days.
pub const EVERY_S: u32 = 600;

/// GitHub keeps deliveries, and redelivers them, for this long.
const KEPT_MS: i64 = 3 * 86_400_000;
/// Redeliveries asked for one delivery before giving up on it.
const MAX_ASKS: u32 = 3;
/// Listing pages read per hook and tick, newest first.
const MAX_PAGES: usize = 10;

/// One delivery attempt as GitHub lists it.
#[derive(Deserialize)]
struct Delivery {
    id: u64,
    guid: String,
    delivered_at: String,
    /// The HTTP status DevPulse answered; 0 when it did not answer.
    status_code: u16,
}

/// What was asked for one delivery (by its GUID, shared by all its attempts).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Asked {
    pub times: u32,
    pub last_at: Timestamp,
    /// When GitHub first tried it; forgotten once GitHub forgets it.
    pub delivered_at: Timestamp,
}

const WATCHED_KEY: &str = "redeliver-hooks";

fn state_key(hook: &str) -> String {
    format!("redeliver/{hook}")
}

/// The org's hooks to watch.
#[derive(Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Watched {
    /// API paths of GitHub webhooks that deliver to this org's endpoint:
    /// `repos/{owner}/{repo}/hooks/{id}` or `orgs/{org}/hooks/{id}`.
    #[schemars(inner(pattern(r"^/*(repos/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+|orgs/[A-Za-z0-9_.-]+)/hooks/[0-9]+/*$")))]
    pub hooks: Vec<String>,
}

/// A watched hook and the failed deliveries asked for again.
#[derive(Serialize, JsonSchema)]
pub struct HookView {
    pub hook: String,
    /// By delivery GUID: how many times it was asked for and when last.
    pub asked: BTreeMap<String, AskedView>,
}

#[derive(Serialize, JsonSchema)]
pub struct AskedView {
    pub times: u32,
    pub last_at: String,
}

#[derive(Serialize, JsonSchema)]
pub struct WatchedView {
    pub hooks: Vec<HookView>,
}

fn valid_hook(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let name = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let id = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["repos", owner, repo, "hooks", hook] => name(owner) && name(repo) && id(hook),
        ["orgs", org, "hooks", hook] => name(org) && id(hook),
        _ => false,
    }
}

/// `PUT /redeliver`: replaces the org's watched hooks and makes a first pass
/// over them at once.
pub fn watch(call: Call<(), Watched>) -> Result<WatchedView> {
    let hooks: Vec<String> = call.body.hooks.iter().map(|hook| hook.trim_matches('/').to_owned()).collect();
    if let Some(bad) = hooks.iter().find(|hook| !valid_hook(hook)) {
        return Err(Error::invalid(format!(
            "{bad:?} is not repos/{{owner}}/{{repo}}/hooks/{{id}} or orgs/{{org}}/hooks/{{id}}"
        )));
    }
    let watched = Watched { hooks };
    storage::put(WATCHED_KEY, &watched)?;
    repair_all(&watched, now())?;
    view()
}

/// `GET /redeliver`: the watched hooks and what was asked for.
pub fn watched(_call: Call) -> Result<WatchedView> {
    view()
}

fn view() -> Result<WatchedView> {
    let watched: Watched = storage::get(WATCHED_KEY)?.unwrap_or_default();
    let mut hooks = Vec::new();
    for hook in watched.hooks {
        let asked: BTreeMap<String, Asked> = storage::get(&state_key(&hook))?.unwrap_or_default();
        let asked = asked
            .into_iter()
            .map(|(guid, asked)| (guid, AskedView { times: asked.times, last_at: rfc3339(asked.last_at) }))
            .collect();
        hooks.push(HookView { hook, asked });
    }
    Ok(WatchedView { hooks })
}

/// The `redeliver` schedule: the org's watched hooks, each in turn.
pub fn tick(now: Timestamp) -> Result<()> {
    repair_all(&storage::get(WATCHED_KEY)?.unwrap_or_default(), now)
}

fn repair_all(watched: &Watched, now: Timestamp) -> Result<()> {
    if watched.hooks.is_empty() {
        return Ok(());
    }
    let api = Api::from_settings(&Settings::load()?)?;
    for hook in &watched.hooks {
        if let Err(err) = repair(&api, hook, now) {
            log::warn(&format!("redelivery for hook {hook} failed: {err}"));
        }
    }
    Ok(())
}

/// Lists the hook's deliveries of the last 3 days and asks for the failed ones again.
fn repair(api: &Api, hook: &str, now: Timestamp) -> Result<()> {
    let mut attempts: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    let mut next = Some(format!("{hook}/deliveries?per_page=100"));
    for _ in 0..MAX_PAGES {
        let Some(url) = next.take() else { break };
        let page = match api.get(&url, now)? {
            Reply::Ok(page) => page,
            Reply::Wait(until) => {
                log::info(&format!("hook {hook}: rate limited until {}; trying next time", rfc3339(until)));
                return Ok(());
            }
        };
        let deliveries: Vec<Delivery> = page.json()?;
        let mut too_old = false;
        for delivery in deliveries {
            let at = crate::payload::time(Some(&delivery.delivered_at)).unwrap_or_default();
            if at < now - KEPT_MS {
                too_old = true;
                continue;
            }
            attempts.entry(delivery.guid.clone()).or_default().push(delivery);
        }
        next = page.next.filter(|_| !too_old);
    }
    let mut asked: BTreeMap<String, Asked> = storage::get(&state_key(hook))?.unwrap_or_default();
    asked.retain(|_, asked| asked.delivered_at >= now - KEPT_MS);
    let mut redelivered = 0;
    for (guid, tries) in &attempts {
        if tries.iter().any(|attempt| (200..300).contains(&attempt.status_code)) {
            continue;
        }
        let Some(latest) = tries.iter().max_by_key(|attempt| (&attempt.delivered_at, attempt.id)) else { continue };
        let first_at = tries.iter().filter_map(|attempt| crate::payload::time(Some(&attempt.delivered_at))).min();
        let entry = asked
            .entry(guid.clone())
            .or_insert_with(|| Asked { delivered_at: first_at.unwrap_or(now), ..Asked::default() });
        if entry.times >= MAX_ASKS {
            continue;
        }
        match api.post(&format!("{hook}/deliveries/{}/attempts", latest.id), now)? {
            Reply::Ok(_) => {
                entry.times += 1;
                entry.last_at = now;
                redelivered += 1;
                log::info(&format!(
                    "hook {hook}: asked GitHub to redeliver {guid} (answered {}; request {} of {MAX_ASKS})",
                    latest.status_code, entry.times
                ));
            }
            Reply::Wait(until) => {
                log::info(&format!("hook {hook}: rate limited until {}; the rest next time", rfc3339(until)));
                break;
            }
        }
    }
    if redelivered > 0 {
        log::info(&format!("hook {hook}: {redelivered} failed deliveries asked for again"));
    }
    storage::put(&state_key(hook), &asked)
}
