//! The attendance plugin's figures in docs/performance.md
//! (`scripts/bench-attendance`): a month of a 200-person org (clock-in and
//! clock-out, a lunch break reported as idle, a heartbeat every two minutes of
//! activity, each person in their own time zone) uploaded through `/sync` in
//! batches of 1,000 by several clients at once, timed until the plugin has
//! folded every day; the latency of the syncs; then `days` (one person's
//! month) and `team` (everyone's month) as a manager, p50 and p99.

use chrono::Datelike;
use clap::Parser;
use devpulse_e2e::{Backend, Options, TestServer, latency_summary};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value_t = 200)]
    people: usize,
    /// Calendar days of the month; weekdays are worked.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Records per sync.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Syncs in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Requests per route for the read latencies.
    #[arg(long, default_value_t = 200)]
    samples: usize,
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// UTC midnight of the Monday that starts a month of `days` ending before today.
fn month_start(days: i64) -> i64 {
    let earliest = chrono::Utc::now().date_naive() - chrono::Days::new(days as u64 + 1);
    let monday = earliest - chrono::Days::new(u64::from(earliest.weekday().num_days_from_monday()));
    monday.and_hms_opt(0, 0, 0).map_or(0, |midnight| midnight.and_utc().timestamp_millis())
}
const ZONES: [(&str, i64); 4] =
    [("Europe/Berlin", -HOUR), ("America/New_York", 5 * HOUR), ("Asia/Kolkata", -(5 * HOUR + 30 * MINUTE)), ("UTC", 0)];

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// One person's month: per weekday in, lunch, heartbeats every two minutes of activity, out.
fn month(person: usize, start_of_month: i64, days: i64) -> Vec<Value> {
    let (_, offset) = ZONES[person % ZONES.len()];
    let mut records = Vec::new();
    for day in 0..days {
        if day % 7 >= 5 {
            continue;
        }
        // 08:00 to 08:59 local, a little different each day and person; out 8h45 later.
        let start = start_of_month + day * DAY + offset + 8 * HOUR + ((person as i64 * 7 + day * 13) % 60) * MINUTE;
        let lunch = start + 4 * HOUR;
        let end = start + 8 * HOUR + 45 * MINUTE;
        let id = |kind: &str, n: i64| format!("{kind}-{day}-{n}");
        records.push(json!({"id": id("in", 0), "type": "clock_in", "at": at(start), "device": "desktop"}));
        records.push(json!({"id": id("lunch", 0), "type": "idle", "at": at(lunch), "until": at(lunch + 45 * MINUTE)}));
        let mut beat = start;
        while beat < end {
            if !(lunch..lunch + 45 * MINUTE).contains(&beat) {
                records.push(json!({"id": id("hb", beat), "type": "heartbeat", "at": at(beat), "project": "api", "language": "Rust", "is_write": true}));
            }
            beat += 2 * MINUTE;
        }
        records.push(json!({"id": id("out", 0), "type": "clock_out", "at": at(end)}));
    }
    records
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = if args.backend == "postgres" { Backend::Postgres } else { Backend::Sqlite };
    // The benchmark measures the plugin, not the rate limiter; the month is in the past.
    let config = "[rate_limits]\nper_token = 0\nper_webhook_source = 0\n\
                  [plugins.attendance.settings]\nmax_record_age_days = 100000\n";
    let server = TestServer::start_with(backend, Options { config: config.into(), ..Options::default() })
        .await
        .ok_or_else(|| anyhow::anyhow!("{} is unavailable", args.backend))?;
    let (_, manager) = server.user_with_role("manager").await;
    let mut people = Vec::new();
    for person in 0..args.people {
        people.push(server.user_in_zone("developer", ZONES[person % ZONES.len()].0).await);
    }
    let start_of_month = month_start(args.days);
    let mut batches = Vec::new();
    for (person, (_, token)) in people.iter().enumerate() {
        for chunk in month(person, start_of_month, args.days).chunks(args.batch) {
            batches.push((token.clone(), Value::Array(chunk.to_vec())));
        }
    }
    let records: usize = batches.iter().map(|(_, batch)| batch.as_array().map_or(0, Vec::len)).sum();
    println!(
        "{}: {} people, {records} records in {} syncs of up to {}, {} clients",
        args.backend,
        args.people,
        batches.len(),
        args.batch,
        args.concurrency
    );

    let server = Arc::new(server);
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let (server, queue) = (server.clone(), queue.clone());
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Some((token, batch)) = queue.lock().ok().and_then(|mut queue| queue.pop()) {
                let sent = Instant::now();
                let (status, answer) =
                    server.post_as(&token, "/api/v1/attendance/sync", &json!({ "records": batch })).await;
                latencies.push(sent.elapsed());
                let rejected = answer["results"].as_array().and_then(|results| {
                    results.iter().find(|result| result["status"] != "accepted" && result["status"] != "duplicate")
                });
                assert!(status == 200 && rejected.is_none(), "sync answered {status}: {rejected:?}");
            }
            latencies
        }));
    }
    let mut syncs = Vec::new();
    for client in clients {
        syncs.extend(client.await?);
    }
    let uploaded = started.elapsed();
    server.delivered("attendance", Duration::from_secs(3_600)).await;
    let folded = started.elapsed();
    println!(
        "uploaded in {:.1} s ({:.0} records/s); folded {:.1} s after the first sync: {:.0} records/s end to end",
        uploaded.as_secs_f64(),
        records as f64 / uploaded.as_secs_f64(),
        folded.as_secs_f64(),
        records as f64 / folded.as_secs_f64()
    );
    println!("{}", latency_summary("sync of 1,000 records", syncs));

    let date = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.date_naive().to_string());
    let (from, to) =
        (date(start_of_month).unwrap_or_default(), date(start_of_month + args.days * DAY).unwrap_or_default());
    let mut days = Vec::new();
    for sample in 0..args.samples {
        let user = &people[sample % people.len()].0;
        let sent = Instant::now();
        let (status, page) =
            server.get_as(&manager, &format!("/api/v1/attendance/days?user={user}&from={from}&to={to}")).await;
        days.push(sent.elapsed());
        anyhow::ensure!(status == 200 && page["items"].as_array().is_some_and(|items| !items.is_empty()), "{page}");
    }
    println!("{}", latency_summary("days (one person, a month)", days));
    let mut team = Vec::new();
    for _ in 0..args.samples {
        let sent = Instant::now();
        let (status, answer) = server.get_as(&manager, &format!("/api/v1/attendance/team?from={from}&to={to}")).await;
        team.push(sent.elapsed());
        anyhow::ensure!(status == 200 && answer["people"].as_array().map(Vec::len) == Some(args.people), "{answer}");
    }
    println!("{}", latency_summary("team (everyone, a month)", team));
    Arc::try_unwrap(server).map_err(|_| anyhow::anyhow!("clients still hold the server"))?.stop().await;
    Ok(())
}
