"""{{name}}: a DevPulse plugin in Python, the same contract as the Rust `hello` example.

- POST /greetings greets someone: counts it in storage, records a metric and
  emits a `{{name}}.greeted` event.
- GET /greetings/{name} reads the count back.
- GET /stats says how many `{{name}}.greeted` events this plugin has handled.
- Its `heartbeat` schedule records a metric once an hour per org.

Build with `devpulse plugin build` (or `componentize-py -d wit -w plugin componentize app -o {{name}}.wasm`).
"""

import json
import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import events, metrics, storage
from wit_world.imports.types import (
    Error_InvalidInput,
    Error_NotFound,
    Manifest,
    Method,
    Param,
    ParamLocation,
    Response,
    ResponseSpec,
    Role,
    Route,
    Schedule,
)

NAME = "{{name}}"

NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 64}
GREETING_SCHEMA = {
    "type": "object",
    "required": ["message", "name", "times_greeted"],
    "properties": {
        "message": {"type": "string"},
        "name": {"type": "string"},
        "times_greeted": {"type": "integer", "minimum": 0},
    },
}


def route(method, path, summary, response_schema, status=200, params=(), body_schema=None):
    """A route for the manifest; schemas are JSON Schema, written as dicts."""
    return Route(
        method=method,
        path=path,
        summary=summary,
        description="",
        params=list(params),
        body_schema=json.dumps(body_schema) if body_schema else None,
        responses=[ResponseSpec(status=status, description=summary, schema=json.dumps(response_schema))],
        min_role=Role.DEVELOPER,
    )


def reply(status, body):
    return Response(status=status, headers=[("content-type", "application/json")], body=json.dumps(body))


def load(key, default):
    text = storage.get(key)
    return default if text is None else json.loads(text)


def greeting(name, times_greeted):
    return {"message": f"Hello, {name}!", "name": name, "times_greeted": times_greeted}


class Handler(exports.Handler):
    def describe(self) -> Manifest:
        return Manifest(
            name=NAME,
            version="0.1.0",
            description="Greets people (Python)",
            routes=[
                route(
                    Method.POST,
                    "/greetings",
                    "Greet someone",
                    GREETING_SCHEMA,
                    status=201,
                    body_schema={
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"name": NAME_SCHEMA},
                    },
                ),
                route(
                    Method.GET,
                    "/greetings/{name}",
                    "How many times someone was greeted",
                    GREETING_SCHEMA,
                    params=[Param("name", ParamLocation.PATH, True, "Who was greeted", json.dumps(NAME_SCHEMA))],
                ),
                route(
                    Method.GET,
                    "/stats",
                    "How many greeted events this plugin handled",
                    {"type": "object", "properties": {"events_seen": {"type": "integer"}}},
                ),
            ],
            subscriptions=[f"{NAME}.greeted"],
            schedules=[Schedule(name="heartbeat", interval_seconds=3600)],
            webhook_sources=[],
            capabilities=[],
        )

    def on_request(self, request) -> Response:
        if request.method == Method.POST and request.route == "/greetings":
            name = json.loads(request.body)["name"]
            times = load(f"greeted/{name}", 0) + 1
            storage.put(f"greeted/{name}", json.dumps(times))
            metrics.record(metrics.Point(f"{NAME}.greetings", [("name", name)], int(time.time() * 1000), 1.0))
            events.emit(f"{NAME}.greeted", json.dumps({"name": name}))
            return reply(201, greeting(name, times))
        if request.method == Method.GET and request.route == "/greetings/{name}":
            name = dict(request.path_params)["name"]
            return reply(200, greeting(name, load(f"greeted/{name}", 0)))
        if request.method == Method.GET and request.route == "/stats":
            return reply(200, {"events_seen": load("events-seen", 0)})
        raise Err(Error_NotFound(f"no handler for {request.route}"))

    def on_event(self, event) -> None:
        if not json.loads(event.payload).get("name"):
            raise Err(Error_InvalidInput("a greeted event names who was greeted"))
        storage.put("events-seen", json.dumps(load("events-seen", 0) + 1))

    def on_tick(self, schedule, now, principal) -> None:
        metrics.record(metrics.Point(f"{NAME}.heartbeat", [], now, 1.0))
