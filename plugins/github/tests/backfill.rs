//! Backfill and redelivery against the fake GitHub of `tests/fake-github`,
//! natively with a virtual clock: the scenario's history read through the REST
//! API gives the same figures as its webhooks, also when both arrive, through
//! pagination, an exhausted rate-limit window and secondary limits; failed
//! webhook deliveries are asked for again, once they failed and only then.

mod common;

use common::{events, figures, get, host, replay};
use devpulse_sdk::testing::TestHost;
use devpulse_sdk::{Error, Method, Role};
use fake_github::{FakeGithub, Limit};
use github::Github;
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

const API: &str = "https://api.github.test";
const TOKEN: &str = "fake-token";

/// A host whose `http` answers from `fake` at the time `clock` says.
fn with_fake(host: TestHost<Github>, fake: &Rc<RefCell<FakeGithub>>, clock: &Rc<Cell<i64>>) -> TestHost<Github> {
    let (fake, clock) = (fake.clone(), clock.clone());
    host.with_config("token", TOKEN).with_config("api_url", API).with_http(move |request| {
        let path = request.url.strip_prefix(API).expect("requests go to the configured API");
        let authorization = request.headers.iter().find(|(name, _)| name == "authorization").map(|(_, v)| v.as_str());
        let method = match request.method {
            Method::Post => "POST",
            _ => "GET",
        };
        let answer = fake.borrow_mut().respond(method, path, authorization, clock.get());
        Ok(devpulse_sdk::http::IncomingResponse { status: answer.status, headers: answer.headers, body: answer.body })
    })
}

/// Starts a backfill of the scenario's repository and ticks (5 s apart, the
/// schedule's interval) until it is done; returns its final progress.
fn backfill(host: &TestHost<Github>, clock: &Cell<i64>) -> Value {
    let started = host.post("/backfill", json!({"repo": "acme/api", "since": "2026-11-01T00:00:00Z"}));
    let started = started.unwrap();
    assert_eq!(started.status, 202, "{:?}", started.body);
    let id = started.body.unwrap()["id"].as_str().unwrap().to_owned();
    for _ in 0..500 {
        host.tick("backfill", clock.get()).unwrap();
        host.deliver_emitted().unwrap();
        let progress = get(host, &format!("/backfill/{id}"));
        if progress["state"] == "done" {
            return progress;
        }
        assert_ne!(progress["state"], "failed", "{progress}");
        clock.set(clock.get() + 5_000);
    }
    panic!("the backfill did not finish in 500 ticks");
}

fn host_without_fake() -> TestHost<Github> {
    host(Role::Admin)
}

fn setup(role: Role) -> (TestHost<Github>, Rc<RefCell<FakeGithub>>, Rc<Cell<i64>>) {
    let fake = Rc::new(RefCell::new(FakeGithub::new(FakeGithub::scenario_data(), API, TOKEN)));
    let clock = Rc::new(Cell::new(devpulse_sdk::now()));
    (with_fake(host(role), &fake, &clock), fake, clock)
}

/// What a pull request's timeline says, without the event ids (which differ
/// between webhooks and a backfill by nature).
fn timeline(host: &TestHost<Github>, number: u64) -> Vec<(String, String, Value)> {
    let detail = get(host, &format!("/pulls/acme/api/{number}"));
    detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|moment| {
            (moment["at"].as_str().unwrap().into(), moment["what"].as_str().unwrap().into(), moment["detail"].clone())
        })
        .collect()
}

#[test]
fn a_backfill_gives_the_figures_of_the_webhooks() {
    let webhooks = host(Role::Admin);
    replay(&webhooks, &events());

    let (backfilled, fake, clock) = setup(Role::Admin);
    let progress = backfill(&backfilled, &clock);
    assert_eq!(figures(&backfilled), figures(&webhooks));
    for number in 1..=4 {
        assert_eq!(timeline(&backfilled, number), timeline(&webhooks, number), "timeline of #{number}");
    }
    // 4 pull requests, 3 production deployments (the staging one is not read).
    assert_eq!(progress["items"], json!({"pulls": 4, "deployments": 3, "workflow_runs": 0}));
    assert_eq!(progress["pending"], 0);
    assert_eq!(progress["rate_limit_waits"], 0);
    let fake = fake.borrow();
    assert_eq!(fake.requests_for("/repos/acme/api/pulls"), 2, "two pages of two");
    assert_eq!(fake.requests_for("/repos/acme/api/deployments/104/statuses"), 0);
    assert_eq!(progress["requests"], json!(fake.log.len()));
    assert_eq!(progress["pages_done"], json!(fake.log.len()));
}

#[test]
fn webhooks_and_a_backfill_of_the_same_history_count_once() {
    let webhooks = host(Role::Admin);
    replay(&webhooks, &events());

    let (both, _, clock) = setup(Role::Admin);
    // Half the webhooks before the backfill, the rest after it.
    let all = events();
    let (before, after) = all.split_at(all.len() / 2);
    replay(&both, before);
    backfill(&both, &clock);
    replay(&both, after);
    assert_eq!(figures(&both), figures(&webhooks));
}

#[test]
fn rate_limits_pause_the_backfill_until_github_allows_more() {
    let webhooks = host(Role::Admin);
    replay(&webhooks, &events());

    let (host, fake, clock) = setup(Role::Admin);
    {
        let mut fake = fake.borrow_mut();
        fake.limit = Some(Limit { per_window: 7, window_ms: 60_000 });
        // The 3rd request hits a secondary limit (403), the 12th another (429).
        fake.secondary = vec![(3, 403, 30), (12, 429, 10)];
    }
    let start = clock.get();
    let progress = backfill(&host, &clock);
    assert_eq!(figures(&host), figures(&webhooks));
    let waits = progress["rate_limit_waits"].as_u64().unwrap();
    // Windows of 7 requests, each exhausted one waited out, plus the 2 secondary limits.
    assert!(waits >= 6, "{progress}");
    let fake = fake.borrow();
    let refused = fake.log.len() as u64 - progress["pages_done"].as_u64().unwrap();
    assert_eq!(refused, 2, "only the secondary limits are refused: the window's end is waited for, not hit");
    assert!(clock.get() - start >= 4 * 60_000, "each exhausted window was waited out");
}

#[test]
fn a_bad_request_is_refused_with_its_reason() {
    let (host, _, _) = setup(Role::Admin);
    let start = |host: &TestHost<Github>, repo: &str, since: &str| {
        host.post("/backfill", json!({"repo": repo, "since": since}))
    };
    let since = "2026-11-01T00:00:00Z";
    assert!(matches!(start(&host, "acme", since), Err(Error::InvalidInput(why)) if why.contains("owner/name")));
    assert!(matches!(start(&host, "acme/api", "yesterday"), Err(Error::InvalidInput(why)) if why.contains("RFC 3339")));
    assert!(matches!(start(&host, "acme/nope", since), Err(Error::NotFound(why)) if why.contains("GitHub")));
    assert_eq!(start(&host, "acme/api", since).unwrap().status, 202);
    assert!(matches!(start(&host, "acme/api", since), Err(Error::Conflict(why)) if why.contains("still running")));
    assert_eq!(get(&host, "/backfill")["items"].as_array().unwrap().len(), 1);

    let without_token = host_without_fake();
    assert!(matches!(start(&without_token, "acme/api", since), Err(Error::Conflict(why)) if why.contains("token")));
    assert!(matches!(host.get("/backfill/0"), Err(Error::NotFound(_))));
}

#[test]
fn failed_deliveries_are_asked_for_again_until_one_succeeds() {
    let (host, fake, clock) = setup(Role::Admin);
    assert!(matches!(
        host.request(Method::Put, "/redeliver", Some(json!({"hooks": ["acme/api/77"]}))),
        Err(Error::InvalidInput(_))
    ));
    let watched = host.request(Method::Put, "/redeliver", Some(json!({"hooks": ["repos/acme/api/hooks/77"]}))).unwrap();
    assert_eq!(watched.body.unwrap()["hooks"][0]["hook"], "repos/acme/api/hooks/77");
    let now = clock.get();
    let asked = |guid: &str| {
        let fake = fake.borrow();
        fake.redeliveries_asked
            .iter()
            .filter(|id| fake.deliveries.iter().any(|delivery| delivery.id == **id && delivery.guid == guid))
            .count()
    };
    let record = |guid: &str, status: u16, redelivery: bool, at: i64| {
        fake.borrow_mut().record_delivery(guid, "push", json!({}), status, redelivery, at)
    };
    record("ok", 202, false, now - 60_000);
    record("failed", 502, false, now - 30_000);
    record("forgotten", 0, false, now - 4 * 86_400_000);

    host.tick("redeliver", now).unwrap();
    assert_eq!((asked("ok"), asked("failed"), asked("forgotten")), (0, 1, 0), "only failures of the last 3 days");

    // Its redelivery failed too: asked again; then one succeeds: never again.
    record("failed", 0, true, now + 1_000);
    host.tick("redeliver", now + 600_000).unwrap();
    assert_eq!(asked("failed"), 2);
    record("failed", 202, true, now + 601_000);
    host.tick("redeliver", now + 1_200_000).unwrap();
    assert_eq!(asked("failed"), 2);

    // One that never succeeds is asked for 3 times at most.
    record("down", 503, false, now + 1_300_000);
    for tick in 1..=5 {
        let at = now + 1_300_000 + tick * 600_000;
        host.tick("redeliver", at).unwrap();
        record("down", 503, true, at + 1_000);
    }
    assert_eq!(asked("down"), 3);
    assert_eq!(get(&host, "/redeliver")["hooks"][0]["asked"]["down"]["times"], 3);

    // Without watched hooks a tick asks GitHub nothing.
    host.request(Method::Put, "/redeliver", Some(json!({"hooks": []}))).unwrap();
    let before = fake.borrow().log.len();
    host.tick("redeliver", now + 9_000_000).unwrap();
    assert_eq!(fake.borrow().log.len(), before);
}
