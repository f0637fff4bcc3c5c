//! The attendance plugin through the SDK's in-memory host, with figures worked
//! out by hand: a night shift across a DST change, idle spans and heartbeat
//! gaps, sessions closed by silence, corrections, rules, and the same records
//! in any order or twice giving the same days.

use attendance::Attendance;
use devpulse_sdk::testing::TestHost;
use devpulse_sdk::{Error, Role};
use serde_json::{Value, json};

const H: f64 = 3600.0;

fn user(id: &str, zone: &str) -> devpulse_sdk::identity::User {
    devpulse_sdk::identity::User {
        id: id.into(),
        display_name: id.into(),
        email: format!("{id}@example.com"),
        role: Role::Developer,
        time_zone: zone.into(),
        identities: Vec::new(),
    }
}

/// A host whose caller, `user-1`, works in `zone`; records of any age are taken.
fn host(zone: &str, role: Role) -> TestHost<Attendance> {
    TestHost::<Attendance>::new()
        .with_role(role)
        .with_user(user("user-1", zone))
        .with_user(user("user-2", "UTC"))
        .with_config("max_record_age_days", 100_000)
}

/// Syncs `records` and folds the events they became.
fn sync(host: &TestHost<Attendance>, records: Value) -> Value {
    let answer = host.post("/sync", json!({ "records": records })).unwrap().body.unwrap();
    while host.deliver_emitted().unwrap() > 0 {}
    answer
}

fn get(host: &TestHost<Attendance>, path: &str) -> Value {
    host.get(path).unwrap().body.unwrap()
}

fn clock(id: &str, kind: &str, at: &str) -> Value {
    json!({"id": id, "type": kind, "at": at})
}

fn days(host: &TestHost<Attendance>, from: &str, to: &str) -> Vec<Value> {
    get(host, &format!("/days?from={from}&to={to}"))["items"].as_array().unwrap().clone()
}

/// A figure of the day `date` in `days`.
fn figure(days: &[Value], date: &str, name: &str) -> f64 {
    days.iter().find(|day| day["date"] == date).map_or(0.0, |day| day[name].as_f64().unwrap())
}

#[test]
fn a_night_shift_across_the_end_of_summer_time_is_split_at_local_midnight() {
    let host = host("Europe/Berlin", Role::Developer);
    // Berlin leaves summer time at 03:00 on 25 October 2026: that day lasts 25 hours.
    // In 22:00 CEST (20:00Z) on the 24th, out 06:00 CET (05:00Z) on the 25th: 9 real hours.
    sync(
        &host,
        json!([
            clock("in", "clock_in", "2026-10-24T22:00:00+02:00"),
            clock("out", "clock_out", "2026-10-25T06:00:00+01:00")
        ]),
    );
    let days = days(&host, "2026-10-24", "2026-10-25");
    assert_eq!(figure(&days, "2026-10-24", "worked_s"), 2.0 * H, "22:00 to midnight");
    assert_eq!(
        figure(&days, "2026-10-25", "worked_s"),
        7.0 * H,
        "midnight to 06:00 with the clock set back in between"
    );
    assert_eq!(figure(&days, "2026-10-25", "length_s"), 25.0 * H);
    assert_eq!(figure(&days, "2026-10-24", "length_s"), 24.0 * H);
    assert_eq!(days[1]["first_in"], "2026-10-24T22:00:00+00:00", "the day begins at local midnight, 22:00Z");
    assert_eq!(days[1]["time_zone"], "Europe/Berlin");
}

#[test]
fn idle_spans_and_heartbeat_gaps_are_idle_time() {
    let host = host("UTC", Role::Developer);
    let mut records = vec![
        clock("in", "clock_in", "2026-11-02T09:00:00Z"),
        clock("out", "clock_out", "2026-11-02T17:00:00Z"),
        json!({"id": "lunch", "type": "idle", "at": "2026-11-02T12:00:00Z", "until": "2026-11-02T12:30:00Z"}),
    ];
    // Heartbeats every two minutes, 09:00 to 11:00 and 13:00 to 17:00: the gap 11:00 to 13:00 is idle.
    for minute in (0..=120).step_by(2).chain((240..=480).step_by(2)) {
        let at = format!("2026-11-02T{:02}:{:02}:00Z", 9 + minute / 60, minute % 60);
        records.push(
            json!({"id": format!("hb-{minute}"), "type": "heartbeat", "at": at, "project": "api", "language": "Rust"}),
        );
    }
    sync(&host, Value::Array(records));
    let days = days(&host, "2026-11-02", "2026-11-02");
    assert_eq!(figure(&days, "2026-11-02", "idle_s"), 2.0 * H, "the reported lunch lies inside the heartbeat gap");
    assert_eq!(figure(&days, "2026-11-02", "worked_s"), 6.0 * H);
    assert_eq!(figure(&days, "2026-11-02", "breaks_s"), 2.0 * H);
    assert_eq!(figure(&days, "2026-11-02", "active_s"), 0.0, "heartbeats in a session are worked time");
}

#[test]
fn the_same_records_in_any_order_or_twice_give_the_same_days() {
    let mut records = Vec::new();
    for day in 2..=6 {
        records.push(clock(&format!("in-{day}"), "clock_in", &format!("2026-11-0{day}T08:00:00Z")));
        records.push(clock(&format!("out-{day}"), "clock_out", &format!("2026-11-0{day}T16:30:00Z")));
        records.push(json!({"id": format!("idle-{day}"), "type": "idle", "at": format!("2026-11-0{day}T12:00:00Z"), "until": format!("2026-11-0{day}T12:45:00Z")}));
        records
            .push(json!({"id": format!("hb-{day}"), "type": "heartbeat", "at": format!("2026-11-0{day}T20:00:00Z")}));
    }
    let in_order = host("America/New_York", Role::Developer);
    let first = sync(&in_order, Value::Array(records.clone()));
    assert_eq!(first["accepted"], 20);
    let mut shuffled = records.clone();
    shuffled.reverse();
    shuffled.rotate_left(7);
    let other = host("America/New_York", Role::Developer);
    // Two halves, the later one first, each sent twice.
    let (early, late) = shuffled.split_at(9);
    sync(&other, Value::Array(late.to_vec()));
    sync(&other, Value::Array(early.to_vec()));
    let again = sync(&other, Value::Array(shuffled.clone()));
    assert_eq!((again["accepted"].clone(), again["duplicates"].clone()), (json!(0), json!(20)), "{again}");
    assert_eq!(days(&in_order, "2026-11-01", "2026-11-07"), days(&other, "2026-11-01", "2026-11-07"));
    let nov_3 = days(&in_order, "2026-11-03", "2026-11-03");
    assert_eq!(figure(&nov_3, "2026-11-03", "worked_s"), 7.75 * H, "08:00 to 16:30 less 45 minutes idle");
}

#[test]
fn a_silent_session_is_closed_at_its_last_activity_and_a_correction_mends_it() {
    let host = host("UTC", Role::Developer);
    sync(&host, json!([clock("in", "clock_in", "2026-11-09T09:00:00Z")]));
    let day = &days(&host, "2026-11-09", "2026-11-09")[0];
    assert_eq!(day["auto_closed"], 1, "silent since 09:00, long ago");
    assert_eq!(day["worked_s"], 0.0);
    assert_eq!(day["sessions"][0]["auto_closed"], true);
    assert_eq!(get(&host, "/status")["open"], Value::Null);

    let correction = json!({"action": "add_clock_out", "at": "2026-11-09T17:00:00Z", "reason": "forgot to clock out"});
    assert_eq!(host.post("/corrections", correction).unwrap().status, 201);
    while host.deliver_emitted().unwrap() > 0 {}
    let day = &days(&host, "2026-11-09", "2026-11-09")[0];
    assert_eq!(day["worked_s"], 8.0 * H);
    assert_eq!(day["auto_closed"], 0);
    assert_eq!(day["corrections"], json!(["forgot to clock out"]));

    let remove = json!({"action": "remove", "id": "in", "at": "2026-11-09T09:00:00Z", "reason": "was on leave"});
    host.post("/corrections", remove).unwrap();
    while host.deliver_emitted().unwrap() > 0 {}
    let left = days(&host, "2026-11-09", "2026-11-09");
    assert_eq!(figure(&left, "2026-11-09", "worked_s"), 0.0, "without its clock-in the day holds no session");
}

#[test]
fn days_list_the_rules_they_break() {
    let host = host("UTC", Role::Developer);
    let mut records = Vec::new();
    // Seven days in a row of 11 hours with a 20-minute break.
    for day in 1..=7 {
        records.push(clock(&format!("in-{day}"), "clock_in", &format!("2026-11-{day:02}T07:00:00Z")));
        records.push(clock(&format!("out-{day}"), "clock_out", &format!("2026-11-{day:02}T18:20:00Z")));
        records.push(json!({"id": format!("idle-{day}"), "type": "idle", "at": format!("2026-11-{day:02}T12:00:00Z"), "until": format!("2026-11-{day:02}T12:20:00Z")}));
    }
    sync(&host, Value::Array(records));
    let days = days(&host, "2026-11-01", "2026-11-07");
    assert_eq!(days[0]["breaches"], json!(["max_daily_hours", "min_breaks"]));
    assert_eq!(days[6]["breaches"], json!(["max_daily_hours", "min_breaks", "max_consecutive_days"]));

    // An admin relaxes the rules: every day is judged by them at once.
    let admin = host.as_caller("user-1", Role::Admin);
    let rules = json!({"max_daily_hours": 12.0, "min_breaks": [{"after_hours": 6.0, "minutes": 15.0}], "max_consecutive_days": null});
    admin.request(devpulse_sdk::Method::Put, "/rules", Some(rules)).unwrap();
    assert_eq!(get(&host, "/days?from=2026-11-07&to=2026-11-07")["items"][0]["breaches"], json!([]));
}

#[test]
fn people_read_their_own_details_and_managers_totals_only() {
    let developer = host("UTC", Role::Developer);
    assert!(matches!(developer.get("/days?user=user-2"), Err(Error::Denied(_))));
    let manager = host("UTC", Role::Manager);
    assert_eq!(manager.get("/days?user=user-2").unwrap().status, 200, "managers read anyone's days");
    assert!(matches!(manager.get("/heartbeats?user=user-2"), Err(Error::Denied(_))), "never their heartbeats");
    assert!(matches!(manager.get("/days?user=nobody"), Err(Error::NotFound(_))));
}

#[test]
fn wakatime_heartbeats_keep_no_file_path() {
    let host = host("UTC", Role::Developer);
    let beat = |time: f64| {
        json!({"time": time, "entity": "/home/ada/secret/plan.rs", "type": "file", "category": null, "is_write": true,
               "project": "api", "branch": "main", "language": "Rust", "dependencies": ["serde"], "lines": 10,
               "lineno": 3, "cursorpos": 7, "user_agent": "wakatime/13.1.0"})
    };
    let now = devpulse_sdk::now() as f64 / 1000.0;
    let bulk = json!([beat(now - 600.0), beat(now - 480.0), beat(now - 480.0)]);
    let answer = host.post("/wakatime/users/current/heartbeats.bulk", bulk).unwrap();
    assert_eq!(answer.status, 201);
    assert!(host.emitted().iter().all(|(_, event)| !event.to_string().contains("plan.rs")), "no path in any event");
    let statuses: Vec<Value> =
        answer.body.unwrap()["responses"].as_array().unwrap().iter().map(|r| r[1].clone()).collect();
    assert_eq!(statuses, [json!(201), json!(201), json!(202)], "the same heartbeat twice is taken once");
    while host.deliver_emitted().unwrap() > 0 {}
    let today = get(&host, "/wakatime/users/current/statusbar/today");
    assert_eq!(today["data"]["grand_total"]["total_seconds"], 120.0);
    let beats = get(&host, "/heartbeats")["items"].clone();
    assert_eq!(beats[0]["project"], "api");
    assert_eq!(beats.as_array().unwrap().len(), 2);
    assert!(host.documents().iter().all(|(_, text)| !text.contains("plan.rs") && !text.contains("secret")));
}

#[test]
fn one_session_is_open_at_a_time() {
    let host = host("UTC", Role::Developer);
    assert_eq!(host.post("/clock-in", json!({"id": "a", "device": "laptop"})).unwrap().status, 201);
    let status = get(&host, "/status");
    assert_eq!(status["open"]["id"], "a");
    match host.post("/clock-in", json!({"id": "b"})) {
        Err(Error::Conflict(why)) => assert!(why.contains("session a") && why.contains("laptop"), "{why}"),
        other => panic!("{other:?}"),
    }
    while host.deliver_emitted().unwrap() > 0 {}
    assert_eq!(host.post("/clock-out", Value::Null).unwrap().status, 201);
    assert_eq!(get(&host, "/status")["open"], Value::Null);
    assert!(matches!(host.post("/clock-out", Value::Null), Err(Error::Conflict(_))), "nothing to close");
}
