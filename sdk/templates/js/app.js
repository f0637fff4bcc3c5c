// {{name}}: a DevPulse plugin in JavaScript, the same contract as the Rust `hello` example.
//
// - POST /greetings greets someone: counts it in storage, records a metric and
//   emits a `{{name}}.greeted` event.
// - GET /greetings/{name} reads the count back.
// - GET /stats says how many `{{name}}.greeted` events this plugin has handled.
// - Its `heartbeat` schedule records a metric once an hour per org.
//
// Build with `devpulse plugin build` (or `npm run build`). WIT types map to JS as
// jco documents: records are objects with camelCase fields, enums are strings
// ('get', 'developer'), s64 timestamps are BigInts, and a failed call throws
// an error variant such as `{ tag: 'not-found', val: 'why' }`.

import * as storage from 'devpulse:plugin/storage@{{wit_version}}';
import * as events from 'devpulse:plugin/events@{{wit_version}}';
import * as metrics from 'devpulse:plugin/metrics@{{wit_version}}';

const NAME = '{{name}}';

const NAME_SCHEMA = { type: 'string', minLength: 1, maxLength: 64 };
const GREETING_SCHEMA = {
  type: 'object',
  required: ['message', 'name', 'times_greeted'],
  properties: {
    message: { type: 'string' },
    name: { type: 'string' },
    times_greeted: { type: 'integer', minimum: 0 },
  },
};

/** A route for the manifest; schemas are JSON Schema, written as objects. */
function route(method, path, summary, responseSchema, { status = 200, params = [], bodySchema } = {}) {
  return {
    method,
    path,
    summary,
    description: '',
    params,
    bodySchema: bodySchema ? JSON.stringify(bodySchema) : undefined,
    responses: [{ status, description: summary, schema: JSON.stringify(responseSchema) }],
    minRole: 'developer',
  };
}

const reply = (status, body) => ({
  status,
  headers: [['content-type', 'application/json']],
  body: JSON.stringify(body),
});

function load(key, fallback) {
  const text = storage.get(key);
  return text === undefined || text === null ? fallback : JSON.parse(text);
}

const greeting = (name, timesGreeted) => ({ message: `Hello, ${name}!`, name, times_greeted: timesGreeted });

export const handler = {
  describe() {
    return {
      name: NAME,
      version: '0.1.0',
      description: 'Greets people (JavaScript)',
      routes: [
        route('post', '/greetings', 'Greet someone', GREETING_SCHEMA, {
          status: 201,
          bodySchema: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: { name: NAME_SCHEMA },
          },
        }),
        route('get', '/greetings/{name}', 'How many times someone was greeted', GREETING_SCHEMA, {
          params: [
            { name: 'name', location: 'path', required: true, description: 'Who was greeted', schema: JSON.stringify(NAME_SCHEMA) },
          ],
        }),
        route('get', '/stats', 'How many greeted events this plugin handled', {
          type: 'object',
          properties: { events_seen: { type: 'integer' } },
        }),
      ],
      subscriptions: [`${NAME}.greeted`],
      schedules: [{ name: 'heartbeat', intervalSeconds: 3600 }],
      webhookSources: [],
      capabilities: [],
    };
  },

  onRequest(request) {
    if (request.method === 'post' && request.route === '/greetings') {
      const { name } = JSON.parse(request.body);
      const times = load(`greeted/${name}`, 0) + 1;
      storage.put(`greeted/${name}`, JSON.stringify(times));
      metrics.record({ name: `${NAME}.greetings`, labels: [['name', name]], time: BigInt(Date.now()), value: 1 });
      events.emit(`${NAME}.greeted`, JSON.stringify({ name }));
      return reply(201, greeting(name, times));
    }
    if (request.method === 'get' && request.route === '/greetings/{name}') {
      const name = new Map(request.pathParams).get('name');
      return reply(200, greeting(name, load(`greeted/${name}`, 0)));
    }
    if (request.method === 'get' && request.route === '/stats') {
      return reply(200, { events_seen: load('events-seen', 0) });
    }
    throw { tag: 'not-found', val: `no handler for ${request.route}` };
  },

  onEvent(event) {
    if (!JSON.parse(event.payload).name) {
      throw { tag: 'invalid-input', val: 'a greeted event names who was greeted' };
    }
    storage.put('events-seen', JSON.stringify(load('events-seen', 0) + 1));
  },

  onTick(schedule, now, principal) {
    metrics.record({ name: `${NAME}.heartbeat`, labels: [], time: now, value: 1 });
  },
};
