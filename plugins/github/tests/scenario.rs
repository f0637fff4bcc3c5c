//! The scenario of `tests/fixtures/github/scenario.json` (see `make_scenario.py`
//! for the story) through the SDK's in-memory host, whose percentiles are exact:
//! every figure is checked against its hand-computed value, and the same
//! figures come out of reversed and duplicated deliveries.

mod common;

use common::{H, WINDOW, events, figures, get, host, replay};
use devpulse_sdk::{Error, Role};
use serde_json::{Value, json};

#[test]
fn every_figure_matches_its_hand_computed_value() {
    let host = host(Role::Manager);
    replay(&host, &events());

    let first = get(&host, "/pulls/acme/api/1");
    // First commit 09:00, ready 13:00, first review by someone else 15:00, merged 18:00, deployed 19:00.
    assert_eq!(first["state"], "merged");
    assert_eq!(first["author_user"], "user-1", "ann's login maps to her user");
    assert_eq!(first["cycle_time_s"], json!(9.0 * H));
    assert_eq!(first["coding_time_s"], json!(4.0 * H));
    assert_eq!(first["pickup_time_s"], json!(2.0 * H));
    assert_eq!(first["review_time_s"], json!(3.0 * H));
    assert_eq!(first["deploy_time_s"], json!(H));
    assert_eq!(first["lead_time_s"], json!(10.0 * H));
    assert_eq!((first["reviews"].as_u64(), first["rework_commits"].as_u64()), (Some(2), Some(1)));
    assert_eq!(first["deployment"], "deployment/101");
    let timeline: Vec<&str> =
        first["timeline"].as_array().unwrap().iter().map(|m| m["what"].as_str().unwrap()).collect();
    assert_eq!(
        timeline,
        ["commit", "commit", "opened", "ready_for_review", "review", "commit", "review", "merged", "deployed"]
    );
    assert!(
        first["timeline"].as_array().unwrap().iter().all(|m| m["event_id"].as_str().is_some_and(|id| !id.is_empty()))
    );

    // Bob's: commit 09:00, opened 10:00, only a bot reviewed, merged 12:00; 102 failed, 103 (Nov 4 10:00) shipped it.
    let second = get(&host, "/pulls/acme/api/2");
    assert_eq!(second["coding_time_s"], json!(H));
    assert_eq!((second["pickup_time_s"].clone(), second["review_time_s"].clone()), (Value::Null, Value::Null));
    assert_eq!(second["cycle_time_s"], json!(3.0 * H));
    assert_eq!(second["deploy_time_s"], json!(22.0 * H));
    assert_eq!(second["reviews"], 0);
    // Cat's: no commit seen, so it starts at creation (09:00); merged 09:30, deployed 10:00.
    let third = get(&host, "/pulls/acme/api/3");
    assert_eq!((third["coding_time_s"].clone(), third["cycle_time_s"].clone()), (json!(0.0), json!(0.5 * H)));
    assert_eq!(third["deploy_time_s"], json!(0.5 * H));
    assert_eq!(get(&host, "/pulls/acme/api/4")["state"], "closed");

    let summary = get(&host, &format!("/summary?{WINDOW}&include=items"));
    let all = &summary["groups"][0];
    assert_eq!(all["merged"], 3);
    // Percentiles at rank floor(q·(n−1)): with three values both p50 and p90 are the middle one.
    assert_eq!(all["cycle_time_s"], json!({"p50": 3.0 * H, "p90": 3.0 * H}));
    assert_eq!(all["coding_time_s"], json!({"p50": H, "p90": H}));
    assert_eq!(all["pickup_time_s"], json!({"p50": 2.0 * H, "p90": 2.0 * H}));
    assert_eq!(all["review_time_s"], json!({"p50": 3.0 * H, "p90": 3.0 * H}));
    assert_eq!(all["deploy_time_s"], json!({"p50": H, "p90": H}));
    assert_eq!(all["median_size"], json!(15.0));
    assert_eq!(all["review_coverage"], json!(1.0 / 3.0));
    assert_eq!(all["rework_rate"], json!(1.0 / 3.0));
    let reliability = &all["delivery_reliability"];
    assert_eq!(reliability["inputs"]["change_failure_rate"], json!(1.0 / 3.0));
    // 100 × (0.35·⅓ + 0.25·⅔ + 0.25·⅔ + 0.15·(1 − 3h/168h)) = 59.73…
    assert_eq!(reliability["score"], json!(59.7));
    let items: Vec<u64> =
        summary["items"].as_array().unwrap().iter().map(|pull| pull["number"].as_u64().unwrap()).collect();
    assert_eq!(items, [1, 2, 3]);

    let by_author = get(&host, &format!("/summary?{WINDOW}&group_by=author"));
    let keys: Vec<(&str, u64)> = by_author["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| (group["key"].as_str().unwrap(), group["merged"].as_u64().unwrap()))
        .collect();
    assert_eq!(keys, [("bob", 1), ("cat", 1), ("user-1", 1)]);

    let dora = get(&host, &format!("/dora?{WINDOW}&include=items"));
    assert_eq!(dora["basis"], "deployments");
    // Two successful production deployments (Nov 2 and Nov 4) in one week.
    assert_eq!(
        dora["deployment_frequency"],
        json!({"per_week": 2.0, "days_per_week": 2.0, "total": 2, "band": "high"})
    );
    // Lead times 10 h (PR 1), 25 h (PR 2), 1 h (PR 3): the median is 10 h.
    assert_eq!(dora["lead_time_for_changes"], json!({"p50_s": 10.0 * H, "band": "elite"}));
    assert_eq!(dora["change_failure_rate"], json!({"rate": 1.0 / 3.0, "failed": 1, "deployments": 3, "band": "low"}));
    // Failed Nov 3 13:10, next success Nov 4 10:00: 20 h 50 min.
    assert_eq!(dora["failed_deployment_recovery_time"], json!({"p50_s": 75_000.0, "band": "high"}));
    let deployments: Vec<&str> = dora["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(deployments, ["deployment/101", "deployment/102", "deployment/103"], "staging is not production");
}

#[test]
fn order_and_repetition_of_deliveries_do_not_change_the_figures() {
    let in_order = host(Role::Manager);
    replay(&in_order, &events());
    let expected = figures(&in_order);

    let reversed = host(Role::Manager);
    let mut backwards = events();
    backwards.reverse();
    replay(&reversed, &backwards);
    assert_eq!(figures(&reversed), expected);

    let repeated = host(Role::Manager);
    let twice: Vec<_> = events().into_iter().flat_map(|event| [event.clone(), event]).collect();
    replay(&repeated, &twice);
    replay(&repeated, &events()[..5]);
    assert_eq!(figures(&repeated), expected);
}

#[test]
fn a_developer_sees_only_their_own_numbers() {
    let host = host(Role::Developer);
    replay(&host, &events());
    let pulls = get(&host, "/pulls");
    let numbers: Vec<u64> =
        pulls["items"].as_array().unwrap().iter().map(|pull| pull["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 4], "ann's pull requests only");
    assert!(matches!(host.get("/pulls/acme/api/2"), Err(Error::NotFound(_))), "bob's is not visible");
    let summary = get(&host, &format!("/summary?{WINDOW}"));
    assert_eq!(summary["groups"][0]["merged"], 1);
    assert!(matches!(host.get(&format!("/dora?{WINDOW}")), Err(Error::Denied(_))), "DORA is a team figure");
}

#[test]
fn without_deployments_merges_stand_in() {
    let host = host(Role::Manager);
    let events: Vec<_> = events().into_iter().filter(|(kind, _)| !kind.starts_with("github.deployment")).collect();
    replay(&host, &events);
    let dora = get(&host, &format!("/dora?{WINDOW}"));
    assert_eq!(dora["basis"], "merges");
    assert_eq!(dora["deployment_frequency"]["total"], 3);
    // Merge lead times 9 h, 3 h, 0.5 h: the median is 3 h.
    assert_eq!(dora["lead_time_for_changes"]["p50_s"], json!(3.0 * H));
    assert_eq!(dora["change_failure_rate"]["rate"], Value::Null);
}

#[test]
fn bad_parameters_are_refused_with_reasons() {
    let host = host(Role::Manager);
    for path in ["/summary?from=yesterday", "/summary?group_by=team", "/pulls?state=draft"] {
        assert!(matches!(host.get(path), Err(Error::InvalidInput(_))), "{path}");
    }
}

#[test]
fn a_window_ending_before_it_starts_holds_nothing() {
    let host = host(Role::Manager);
    let summary = get(&host, "/summary?from=2026-11-09T00:00:00Z&to=2026-11-02T00:00:00Z");
    assert_eq!(summary["groups"], json!([]));
    assert_eq!(summary["to"], summary["from"]);
    let dora = get(&host, "/dora?from=2026-11-09T00:00:00Z&to=2026-11-02T00:00:00Z");
    assert_eq!(dora["deployment_frequency"]["per_week"], 0.0);
}

#[test]
fn a_body_that_is_not_githubs_shape_is_logged_and_skipped() {
    let host = host(Role::Manager);
    host.event("github.push", json!({"commits": []})).unwrap();
    assert!(host.logs().iter().any(|line| line.contains("not a GitHub payload")), "{:?}", host.logs());
    assert!(host.points().is_empty());
}
