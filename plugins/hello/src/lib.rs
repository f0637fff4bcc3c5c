//! The example plugin: one of everything the contract offers, on one screen.
//!
//! - `POST /api/v1/hello/greetings` greets someone: stores a count, records a
//!   metric and emits a `hello.greeted` event.
//! - `GET /api/v1/hello/greetings/{name}` reads the count back.
//! - `GET /api/v1/hello/whoami` says who is calling, through the `identity` import.
//! - It subscribes to `hello.greeted` and keeps a tally of the events it saw.
//! - Its `heartbeat` schedule records a metric once an hour per org.

use devpulse_sdk::{
    Error, Event, Manifest, Method, Param, ParamLocation, Plugin, Principal, Request, Response, ResponseSpec, Routes,
    Schedule, Timestamp, events, identity, metrics, route, storage,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub struct Hello;

#[derive(Deserialize)]
struct GreetRequest {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    message: String,
    name: String,
    times_greeted: u64,
}

fn greeting_schema() -> String {
    json!({
        "type": "object",
        "required": ["message", "name", "times_greeted"],
        "properties": {
            "message": {"type": "string"},
            "name": {"type": "string"},
            "times_greeted": {"type": "integer", "minimum": 0}
        }
    })
    .to_string()
}

impl Plugin for Hello {
    fn manifest() -> Manifest {
        let name_schema = json!({"type": "string", "minLength": 1, "maxLength": 64}).to_string();
        Manifest {
            routes: vec![
                devpulse_sdk::Route {
                    description: "Greets `name`, counts it, records `hello.greetings` and emits `hello.greeted`."
                        .into(),
                    body_schema: Some(
                        json!({
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": false,
                            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}}
                        })
                        .to_string(),
                    ),
                    responses: vec![ResponseSpec {
                        status: 201,
                        description: "Greeted".into(),
                        schema: Some(greeting_schema()),
                    }],
                    ..route(Method::Post, "/greetings", "Greet someone")
                },
                devpulse_sdk::Route {
                    description: "How many times `name` was greeted in the caller's org.".into(),
                    params: vec![Param {
                        name: "name".into(),
                        location: ParamLocation::Path,
                        required: true,
                        description: "Who was greeted".into(),
                        schema: name_schema,
                    }],
                    responses: vec![ResponseSpec {
                        status: 200,
                        description: "The tally".into(),
                        schema: Some(greeting_schema()),
                    }],
                    ..route(Method::Get, "/greetings/{name}", "Read a greeting tally")
                },
                devpulse_sdk::Route {
                    description: "The caller's name and role, read through the `identity` import.".into(),
                    ..route(Method::Get, "/whoami", "Who is calling")
                },
            ],
            subscriptions: vec!["hello.greeted".into()],
            schedules: vec![Schedule { name: "heartbeat".into(), interval_seconds: 3600 }],
            ..Manifest::named("hello", env!("CARGO_PKG_VERSION"), "Says hello and shows the whole plugin contract")
        }
    }

    fn on_request(request: Request) -> Result<Response, Error> {
        if request.is(Method::Post, "/greetings") {
            let GreetRequest { name } = request.json()?;
            let key = format!("greeted/{name}");
            let times_greeted = storage::get::<u64>(&key)?.unwrap_or(0) + 1;
            storage::put(&key, &times_greeted)?;
            metrics::record("hello.greetings", &[("name", &name)], now(), 1.0)?;
            events::emit("hello.greeted", &json!({ "name": name }))?;
            return Response::json(201, &greeting(name, times_greeted));
        }
        if request.is(Method::Get, "/greetings/{name}") {
            let name = request.param("name").unwrap_or_default().to_string();
            let times_greeted = storage::get::<u64>(&format!("greeted/{name}"))?.unwrap_or(0);
            return Response::json(200, &greeting(name, times_greeted));
        }
        if request.is(Method::Get, "/whoami") {
            let user = identity::user(&request.principal.user_id)?
                .ok_or_else(|| Error::NotFound("the caller's user is gone".into()))?;
            return Response::json(200, &json!({ "display_name": user.display_name, "time_zone": user.time_zone }));
        }
        Err(Error::NotFound(request.path))
    }

    fn on_event(event: Event) -> Result<(), Error> {
        let seen = storage::get::<u64>("events-seen")?.unwrap_or(0) + 1;
        storage::put("events-seen", &seen)?;
        devpulse_sdk::log::info(&format!("saw {} {}", event.kind, event.id));
        Ok(())
    }

    fn on_tick(_schedule: &str, now: Timestamp, _principal: Principal) -> Result<(), Error> {
        metrics::record("hello.heartbeat", &[], now, 1.0)
    }
}

fn greeting(name: String, times_greeted: u64) -> Greeting {
    let salutation = devpulse_sdk::config::get::<String>("greeting").unwrap_or_else(|| "Hello".into());
    Greeting { message: format!("{salutation}, {name}!"), name, times_greeted }
}

fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as Timestamp)
        .unwrap_or(0)
}

devpulse_sdk::export_plugin!(Hello);
