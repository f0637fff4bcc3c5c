//! What the native scenario and backfill tests share: the scenario's
//! deliveries, a host with ann's user, and everything the routes report.
#![allow(dead_code)]

use devpulse_sdk::Role;
use devpulse_sdk::identity::{ExternalIdentity, User};
use devpulse_sdk::testing::TestHost;
use github::Github;
use serde_json::{Value, json};

pub const H: f64 = 3600.0;
pub const WINDOW: &str = "from=2026-11-02T00:00:00Z&to=2026-11-09T00:00:00Z";

pub fn events() -> Vec<(String, Value)> {
    let scenario: Value =
        serde_json::from_str(include_str!("../../../../tests/fixtures/github/scenario.json")).unwrap();
    scenario["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| (format!("github.{}", event["kind"].as_str().unwrap()), event["payload"].clone()))
        .collect()
}

pub fn host(role: Role) -> TestHost<Github> {
    TestHost::<Github>::new().with_role(role).with_user(User {
        id: "user-1".into(),
        display_name: "Ann".into(),
        email: "ann@example.com".into(),
        role: Role::Developer,
        time_zone: "UTC".into(),
        identities: vec![ExternalIdentity { provider: "github".into(), login: "ann".into() }],
    })
}

pub fn replay(host: &TestHost<Github>, events: &[(String, Value)]) {
    for (kind, payload) in events {
        host.event(kind, payload.clone()).unwrap();
    }
}

pub fn get(host: &TestHost<Github>, path: &str) -> Value {
    let response = host.get(path).unwrap();
    assert_eq!(response.status, 200, "{path}: {:?}", response.body);
    response.body.unwrap()
}

/// Everything the routes report, to compare deliveries in different orders.
pub fn figures(host: &TestHost<Github>) -> Value {
    let mut pulls = get(host, "/pulls");
    for pull in pulls["items"].as_array_mut().unwrap() {
        pull.as_object_mut().unwrap().remove("created_at");
    }
    json!({
        "pulls": pulls,
        "summary": get(host, &format!("/summary?{WINDOW}")),
        "by_author": get(host, &format!("/summary?{WINDOW}&group_by=author")),
        "dora": get(host, &format!("/dora?{WINDOW}")),
    })
}
