//! The plugin's logic under plain `cargo test`, against the SDK's in-memory host.

use devpulse_sdk::testing::TestHost;
use devpulse_sdk::{Error, Method, Role};
use hello::{Greeting, Hello, NAME};
use serde_json::json;

#[test]
fn greeting_counts_records_and_emits() {
    let host = TestHost::<Hello>::new();
    let first = host.post("/greetings", json!({"name": "Ada"})).unwrap();
    assert_eq!(first.status, 201);
    let greeting: Greeting = first.json().unwrap();
    assert_eq!((greeting.message.as_str(), greeting.times_greeted), ("Hello, Ada!", 1));
    host.post("/greetings", json!({"name": "Ada"})).unwrap();

    assert_eq!(host.document::<u64>("greeted/Ada"), Some(2));
    let points = host.points();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].name, format!("{NAME}.greetings"));
    assert_eq!(points[0].labels, vec![("name".to_string(), "Ada".to_string())]);
    assert_eq!(host.emitted(), vec![(format!("{NAME}.greeted"), json!({"name": "Ada"})); 2]);

    let read = host.get("/greetings/Ada?utm_source=mail").unwrap().json::<Greeting>().unwrap();
    assert_eq!(read.times_greeted, 2);
    assert_eq!(host.get("/greetings/Bob").unwrap().json::<Greeting>().unwrap().times_greeted, 0);
}

#[test]
fn its_own_events_are_counted() {
    let host = TestHost::<Hello>::new();
    host.post("/greetings", json!({"name": "Ada"})).unwrap();
    host.post("/greetings", json!({"name": "Bob"})).unwrap();
    assert_eq!(host.deliver_emitted().unwrap(), 2);
    assert_eq!(host.document::<u64>("events-seen"), Some(2));
    assert_eq!(
        host.get("/stats?_=1").unwrap().body,
        Some(json!({"events_seen": 2})),
        "stray query parameters are ignored"
    );
    assert!(host.logs().iter().any(|line| line.starts_with(&format!("saw {NAME}.greeted"))));
}

#[test]
fn the_salutation_is_an_operator_setting() {
    let host = TestHost::<Hello>::new().with_config("greeting", "Howdy");
    let greeting: Greeting = host.post("/greetings", json!({"name": "Ada"})).unwrap().json().unwrap();
    assert_eq!(greeting.message, "Howdy, Ada!");
}

#[test]
fn bad_input_commits_nothing() {
    let host = TestHost::<Hello>::new();
    let refused = host.request(Method::Post, "/greetings", Some(json!({"name": "Ada", "extra": 1})));
    assert!(matches!(refused, Err(Error::InvalidInput(_))), "{refused:?}");
    assert_eq!(host.document::<u64>("greeted/Ada"), None);
    assert!(host.points().is_empty() && host.emitted().is_empty());
}

#[test]
fn whoami_reads_identity() {
    let host = TestHost::<Hello>::new().with_role(Role::Manager);
    assert!(matches!(host.get("/whoami"), Err(Error::NotFound(_))), "no such user yet");
    let user = devpulse_sdk::identity::User {
        id: host.principal().user_id.clone(),
        display_name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        role: Role::Manager,
        time_zone: "Europe/London".into(),
        identities: Vec::new(),
    };
    let host = host.with_user(user);
    assert_eq!(
        host.get("/whoami").unwrap().body,
        Some(json!({"display_name": "Ada Lovelace", "time_zone": "Europe/London"}))
    );
}

#[test]
fn the_heartbeat_records_a_point() {
    let host = TestHost::<Hello>::new();
    host.tick("heartbeat", 1_700_000_000_000).unwrap();
    assert_eq!(host.points()[0].time, 1_700_000_000_000);
}

#[test]
fn the_manifest_derives_schemas_from_the_types() {
    let manifest = TestHost::<Hello>::new().manifest();
    assert_eq!(manifest.name, NAME);
    let post = manifest.routes.iter().find(|route| route.path == "/greetings").unwrap();
    let body: serde_json::Value = serde_json::from_str(post.body_schema.as_deref().unwrap()).unwrap();
    assert_eq!(body["properties"]["name"]["minLength"], 1);
    assert_eq!(body["additionalProperties"], false);
    let tally = manifest.routes.iter().find(|route| route.path == "/greetings/{name}").unwrap();
    assert_eq!(tally.params.len(), 1);
    assert_eq!(tally.params[0].description, "Who was greeted.");
}
