//! The attendance plugin end to end, on both backends: records through the
//! HTTP API become events, folded into days whose figures are worked out by
//! hand (a night shift across a DST change, an idle span and a heartbeat gap,
//! a session closed by silence, a correction, rule breaches), the same in any
//! order and sent twice; a rebuild with another idle timeout recomputes every
//! day; people see their own records, managers totals, other orgs nothing.
//! And the real WakaTime client reports heartbeats without leaving a file path
//! anywhere in the database.

use devpulse_e2e::{Backend, Options, TestServer, on_both_backends, tool_path, tools_dir, unavailable};
use serde_json::{Value, json};
use std::time::Duration;

const H: f64 = 3600.0;

/// Records of any age are taken: the scenario happened weeks ago.
const CONFIG: &str = "[plugins.attendance.settings]\nmax_record_age_days = 100000\n";

async fn server(backend: Backend, config: &str) -> Option<TestServer> {
    TestServer::start_with(backend, Options { config: config.into(), ..Options::default() }).await
}

fn clock(id: &str, kind: &str, at: &str) -> Value {
    json!({"id": id, "type": kind, "at": at})
}

/// Syncs `records` as `token`; the answer.
async fn sync(server: &TestServer, token: &str, records: &[Value]) -> Value {
    let (status, answer) = server.post_as(token, "/api/v1/attendance/sync", &json!({ "records": records })).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The days of `user` once the plugin has folded everything in the log.
async fn days(server: &TestServer, token: &str, user: &str, from: &str, to: &str) -> Vec<Value> {
    caught_up(server).await;
    let (status, page) =
        server.get_as(token, &format!("/api/v1/attendance/days?user={user}&from={from}&to={to}")).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// Waits until the attendance plugin has folded everything in the log.
async fn caught_up(server: &TestServer) {
    server.delivered("attendance", Duration::from_secs(60)).await;
}

fn figure(days: &[Value], date: &str, name: &str) -> f64 {
    days.iter().find(|day| day["date"] == date).map_or(0.0, |day| day[name].as_f64().unwrap())
}

/// The scenario's records: a night shift across Berlin's end of summer time,
/// a day with a lunch break reported and a heartbeat gap, a session never
/// closed, and a week of long days.
fn scenario() -> Vec<Value> {
    let mut records = vec![
        clock("night-in", "clock_in", "2026-10-24T22:00:00+02:00"),
        clock("night-out", "clock_out", "2026-10-25T06:00:00+01:00"),
        clock("nov2-in", "clock_in", "2026-11-02T09:00:00+01:00"),
        clock("nov2-out", "clock_out", "2026-11-02T17:00:00+01:00"),
        json!({"id": "nov2-lunch", "type": "idle", "at": "2026-11-02T12:00:00+01:00", "until": "2026-11-02T12:30:00+01:00"}),
        clock("nov3-in", "clock_in", "2026-11-03T09:00:00+01:00"),
    ];
    for minute in (0..=120).step_by(2).chain((240..=480).step_by(2)) {
        let at = format!("2026-11-02T{:02}:{:02}:00+01:00", 9 + minute / 60, minute % 60);
        records.push(json!({"id": format!("hb-{minute}"), "type": "heartbeat", "at": at, "project": "api"}));
    }
    for day in 9..=15 {
        records.push(clock(&format!("long-in-{day}"), "clock_in", &format!("2026-11-{day:02}T07:00:00+01:00")));
        records.push(clock(&format!("long-out-{day}"), "clock_out", &format!("2026-11-{day:02}T18:20:00+01:00")));
    }
    records
}

async fn days_are_folded_from_records_in_any_order(backend: Backend) {
    let Some(server) = server(backend, CONFIG).await else { return };
    let (ada, ada_token) = server.user_in_zone("developer", "Europe/Berlin").await;
    let (bob, bob_token) = server.user_in_zone("developer", "Europe/Berlin").await;
    let records = scenario();
    let answer = sync(&server, &ada_token, &records).await;
    assert_eq!(answer["accepted"].as_u64(), Some(records.len() as u64), "{answer}");
    // Bob sends the same records reversed, in two halves, and everything twice.
    let mut reversed = records.clone();
    reversed.reverse();
    let (late, early) = reversed.split_at(records.len() / 2);
    sync(&server, &bob_token, late).await;
    sync(&server, &bob_token, early).await;
    let again = sync(&server, &bob_token, &reversed).await;
    assert_eq!(again["duplicates"].as_u64(), Some(records.len() as u64), "sending again changes nothing");

    let ada_days = days(&server, &ada_token, &ada, "2026-10-24", "2026-11-15").await;
    let bob_days = days(&server, &bob_token, &bob, "2026-10-24", "2026-11-15").await;
    let strip = |days: &[Value]| -> Vec<Value> {
        days.iter()
            .map(|day| json!([day["date"], day["worked_s"], day["idle_s"], day["breaks_s"], day["breaches"]]))
            .collect()
    };
    assert_eq!(strip(&ada_days), strip(&bob_days), "the same days whatever the order");

    // 22:00 CEST to 06:00 CET: 2 hours on the 24th, 7 on the 25th, which lasts 25 hours.
    assert_eq!(figure(&ada_days, "2026-10-24", "worked_s"), 2.0 * H);
    assert_eq!(figure(&ada_days, "2026-10-25", "worked_s"), 7.0 * H);
    assert_eq!(figure(&ada_days, "2026-10-25", "length_s"), 25.0 * H);
    // 09:00 to 17:00, idle 11:00 to 13:00 (a heartbeat gap holding the reported lunch).
    assert_eq!(figure(&ada_days, "2026-11-02", "idle_s"), 2.0 * H);
    assert_eq!(figure(&ada_days, "2026-11-02", "worked_s"), 6.0 * H);
    // Never closed: silent since its clock-in, closed there.
    let nov_3 = ada_days.iter().find(|day| day["date"] == "2026-11-03").unwrap();
    assert_eq!((nov_3["auto_closed"].as_u64(), nov_3["worked_s"].as_f64()), (Some(1), Some(0.0)));
    // 11h20 a day without a break, seven days running.
    let nov_15 = ada_days.iter().find(|day| day["date"] == "2026-11-15").unwrap();
    assert_eq!(nov_15["breaches"], json!(["max_daily_hours", "min_breaks", "max_consecutive_days"]));
    let nov_9 = ada_days.iter().find(|day| day["date"] == "2026-11-09").unwrap();
    assert_eq!(nov_9["breaches"], json!(["max_daily_hours", "min_breaks"]));

    // Ada corrects the 3rd: she left at 17:00.
    let correction =
        json!({"action": "add_clock_out", "at": "2026-11-03T17:00:00+01:00", "reason": "forgot to clock out"});
    let (status, _) = server.post_as(&ada_token, "/api/v1/attendance/corrections", &correction).await;
    assert_eq!(status, 201);
    let corrected = days(&server, &ada_token, &ada, "2026-11-03", "2026-11-03").await;
    assert_eq!(corrected[0]["worked_s"], 8.0 * H);
    assert_eq!(corrected[0]["corrections"], json!(["forgot to clock out"]));

    // Team totals for managers: worked seconds and breaches per person.
    let (_, manager) = server.user_with_role("manager").await;
    caught_up(&server).await;
    let (status, team) = server.get_as(&manager, "/api/v1/attendance/team?from=2026-11-09&to=2026-11-15").await;
    assert_eq!(status, 200, "{team}");
    let ada_team = team["people"].as_array().unwrap().iter().find(|person| person["user"] == ada.as_str()).unwrap();
    assert_eq!(ada_team["days_worked"], 7);
    assert_eq!(ada_team["breaches"]["max_daily_hours"], 7);
    assert_eq!(ada_team["worked_s"], 7.0 * (11.0 * H + 20.0 * 60.0));
    server.stop().await;
}

/// How many attendance events `token` sees in the log.
async fn listed(server: &TestServer, token: &str) -> usize {
    server.get_as(token, "/api/v1/events?kind=attendance.*").await.1["items"].as_array().map_or(0, Vec::len)
}

async fn people_see_their_own_records_and_managers_totals(backend: Backend) {
    let Some(server) = server(backend, CONFIG).await else { return };
    let (ada, ada_token) = server.user_in_zone("developer", "UTC").await;
    let (_, bob_token) = server.user_in_zone("developer", "UTC").await;
    let (_, manager) = server.user_with_role("manager").await;
    let now = chrono::Utc::now();
    let beat = json!({"id": "hb", "type": "heartbeat", "at": (now - chrono::Duration::minutes(5)).to_rfc3339(), "project": "secret-project"});
    sync(&server, &ada_token, &[clock("in", "clock_in", &(now - chrono::Duration::hours(1)).to_rfc3339()), beat]).await;
    caught_up(&server).await;

    // The records are events about Ada: hers alone in the log.
    assert!(listed(&server, &ada_token).await >= 2, "Ada sees her records and her days");
    assert_eq!(listed(&server, &bob_token).await, 0, "a colleague sees none of them");
    assert_eq!(listed(&server, &manager).await, 0, "nor does a manager");
    let (_, mine) = server.get_as(&ada_token, "/api/v1/events?kind=attendance.recorded").await;
    let id = mine["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(mine["items"][0]["subject"], ada.as_str());
    assert_eq!(server.get_as(&manager, &format!("/api/v1/events/{id}")).await.0, 404);
    assert_eq!(server.get_as(&server.token, &format!("/api/v1/events/{id}")).await.0, 404, "nor the owner of the org");

    let days = format!("/api/v1/attendance/days?user={ada}");
    assert_eq!(server.get_as(&bob_token, &days).await.0, 403, "a developer reads their own days only");
    assert_eq!(server.get_as(&manager, &days).await.0, 200, "a manager reads anyone's days");
    let beats = format!("/api/v1/attendance/heartbeats?user={ada}");
    assert_eq!(server.get_as(&manager, &beats).await.0, 403, "never their heartbeats");
    let (_, own) = server.get_as(&ada_token, "/api/v1/attendance/heartbeats").await;
    assert_eq!(own["items"][0]["project"], "secret-project");

    // Another org on the same server sees nothing of this one.
    let eve = server.another_org("elsewhere").await;
    assert_eq!(server.get_as(&eve, &days).await.0, 404, "no such user in that org");
    let (_, team) = server.get_as(&eve, "/api/v1/attendance/team").await;
    assert_eq!(team["people"], json!([]));
    assert_eq!(server.get_as(&eve, "/api/v1/events?kind=attendance.*").await.1["items"], json!([]));
    server.stop().await;
}

async fn a_rebuild_with_another_idle_timeout_recomputes_every_day(backend: Backend) {
    let Some(server) = server(backend, CONFIG).await else { return };
    let (ada, token) = server.user_in_zone("developer", "UTC").await;
    // 09:00 to 12:00 with heartbeats every 10 minutes: no gap over 15 minutes.
    let mut records =
        vec![clock("in", "clock_in", "2026-11-04T09:00:00Z"), clock("out", "clock_out", "2026-11-04T12:00:00Z")];
    for minute in (0..=180).step_by(10) {
        let at = format!("2026-11-04T{:02}:{:02}:00Z", 9 + minute / 60, minute % 60);
        records.push(json!({"id": format!("hb-{minute}"), "type": "heartbeat", "at": at}));
    }
    sync(&server, &token, &records).await;
    let before = days(&server, &token, &ada, "2026-11-04", "2026-11-04").await;
    assert_eq!(before[0]["idle_s"], 0.0);

    // The operator shortens the idle timeout to 5 minutes and rebuilds.
    let config = format!("{CONFIG}idle_timeout_minutes = 5\n");
    let server = server.restart_with_config(&config).await;
    let (status, _) = server.post_empty("/api/v1/plugins/attendance/rebuild").await;
    assert_eq!(status, 202);
    let done = server
        .wait_for(Duration::from_secs(60), || async {
            let (_, rebuild) = server.get("/api/v1/plugins/attendance/rebuild").await;
            (rebuild["status"] == "done").then_some(())
        })
        .await;
    assert!(done.is_some(), "the rebuild finishes");
    let after = days(&server, &token, &ada, "2026-11-04", "2026-11-04").await;
    assert_eq!(after[0]["idle_s"], 3.0 * H, "every 10-minute gap is idle now");
    assert_eq!(after[0]["worked_s"], 0.0);
    server.stop().await;
}

on_both_backends!(
    days_are_folded_from_records_in_any_order,
    people_see_their_own_records_and_managers_totals,
    a_rebuild_with_another_idle_timeout_recomputes_every_day,
);

/// WakaTime's pure-Python client, 13.1.0, as developers run it in their editors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_wakatime_client_reports_heartbeats_and_no_file_path_is_stored() {
    // `wakatime --version` itself needs the shim below on Python 3.11: look for the script.
    if !tools_dir().join("venv/bin/wakatime").exists() {
        unavailable("wakatime", "not installed; run scripts/setup --test");
        return;
    }
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    let (_, token) = server.user_in_zone("developer", "UTC").await;
    let (status, created) =
        server.post_as(&token, "/api/v1/tokens", &json!({"name": "editor", "format": "uuid"})).await;
    assert_eq!(status, 201, "{created}");
    let key = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 36, "a UUID: {key}");

    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    // wakatime 13.1.0 imports `collections.Mapping` and friends, gone since Python 3.10.
    std::fs::write(
        site.join("sitecustomize.py"),
        "import collections, collections.abc\nfor name in ('Mapping', 'MutableMapping', 'Sequence', 'Iterable', \
         'Callable', 'Set', 'MutableSet'):\n    setattr(collections, name, getattr(collections.abc, name))\n",
    )
    .unwrap();
    let file = work.path().join("project").join("launch_codes_secret.py");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "print('hello')\n").unwrap();
    let url = server.url("/api/v1/attendance/wakatime/users/current/heartbeats.bulk");
    let now = chrono::Utc::now().timestamp();
    for time in [now - 240, now - 120, now] {
        let output = std::process::Command::new("wakatime")
            .args([
                "--key",
                &key,
                "--api-url",
                &url,
                "--project",
                "demo",
                "--plugin",
                "devpulse-test/1.0",
                "--write",
                "--verbose",
            ])
            .arg("--entity")
            .arg(&file)
            .args(["--time", &time.to_string()])
            .env("PATH", tool_path())
            .env("HOME", work.path())
            .env("PYTHONPATH", &site)
            .output()
            .expect("run wakatime");
        assert!(output.status.success(), "wakatime failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let log = std::fs::read_to_string(work.path().join(".wakatime.log")).unwrap_or_default();
    assert_eq!(log.matches("'response_code': 201").count(), 3, "every heartbeat was taken:\n{log}");

    caught_up(&server).await;
    let (_, today) = server.get_as(&token, "/api/v1/attendance/wakatime/users/current/statusbar/today").await;
    assert_eq!(today["data"]["grand_total"]["total_seconds"], 240.0, "four minutes of activity: {today}");
    let (_, beats) = server.get_as(&token, "/api/v1/attendance/heartbeats").await;
    assert_eq!(beats["items"].as_array().unwrap().len(), 3);
    assert_eq!(beats["items"][0]["language"], "Python");

    // Searched for, not assumed: the file's name is nowhere in the database files
    // (the main file and its write-ahead log).
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("devpulse.db")) {
            let bytes = std::fs::read(&path).unwrap();
            for needle in ["launch_codes_secret", "project/launch"] {
                assert!(
                    !bytes.windows(needle.len()).any(|window| window == needle.as_bytes()),
                    "{needle} found in {}",
                    path.display()
                );
            }
        }
    }
    server.stop().await;
}
