// Drives DevPulse through openapi-fetch typed by openapi-typescript from
// docs/openapi.json: every GET without required parameters, and typed
// create-read-delete round trips of a user and a token. `tsc` checks the
// typed calls against the generated `paths` before this runs.
//
// Usage: node typescript_client.js BASE_URL TOKEN OPENAPI_JSON
import createClient from "openapi-fetch";
import { readFileSync } from "node:fs";
import type { paths } from "./schema.js";

const [base, token, documentPath] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl: base, headers: { Authorization: `Bearer ${token}` } });

function check(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new Error(message);
  }
}

interface Operation {
  parameters?: { required?: boolean }[];
  responses: Record<string, { content?: Record<string, unknown> }>;
}

const document = JSON.parse(readFileSync(documentPath, "utf8")) as { paths: Record<string, { get?: Operation }> };
let called = 0;
for (const [path, item] of Object.entries(document.paths).sort()) {
  const operation = item.get;
  if (!operation || (operation.parameters ?? []).some((param) => param.required)) {
    continue;
  }
  const json = Object.keys(operation.responses["200"]?.content ?? {}).includes("application/json");
  // Untyped on purpose: the loop visits every path the document lists.
  const untyped = client as unknown as {
    GET(path: string, init: { parseAs: "json" | "text" }): Promise<{ data?: unknown; error?: unknown; response: Response }>;
  };
  const { data, error, response } = await untyped.GET(path, { parseAs: json ? "json" : "text" });
  check(response.ok, `GET ${path}: ${response.status} ${JSON.stringify(error)}`);
  check(data !== undefined, `GET ${path}: no body`);
  called += 1;
}
check(called >= 10, `only ${called} parameterless GETs`);

const created = await client.POST("/api/v1/users", {
  body: { display_name: "Grace Hopper", email: "grace@example.com", role: "developer" },
});
check(created.data, `create user: ${JSON.stringify(created.error)}`);
const id = created.data.id;
const read = await client.GET("/api/v1/users/{id}", { params: { path: { id } } });
check(read.data?.email === "grace@example.com", `read user: ${JSON.stringify(read.error)}`);
const deleted = await client.DELETE("/api/v1/users/{id}", { params: { path: { id } } });
check(deleted.response.status === 204, `delete user: ${deleted.response.status}`);
const gone = await client.GET("/api/v1/users/{id}", { params: { path: { id } } });
check(gone.error?.status === 404, `read deleted user: ${gone.response.status}`);

const token_ = await client.POST("/api/v1/tokens", { body: { name: "typescript client" } });
check(token_.data?.secret, `create token: ${JSON.stringify(token_.error)}`);
const tokenId = token_.data.token.id;
const listed = await client.GET("/api/v1/tokens", { params: { query: { limit: 200 } } });
check(listed.data?.items.some((item) => item.id === tokenId), "the new token is listed");
const revoked = await client.DELETE("/api/v1/tokens/{id}", { params: { path: { id: tokenId } } });
check(revoked.response.status === 204, `revoke token: ${revoked.response.status}`);
const after = await client.GET("/api/v1/tokens", { params: { query: { limit: 200 } } });
check(after.data?.items.find((item) => item.id === tokenId)?.revoked_at, "the token shows as revoked");
console.log(`typescript client: ${called} parameterless GETs, user and token round trips`);
