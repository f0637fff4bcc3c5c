//! Typed routes: a handler is a function from a [`Call`] to a serialisable
//! value. The route's parameter, body and response schemas are derived from
//! those types, and the request is decoded into them before the handler runs.

use crate::bindings::devpulse::plugin::types::{Param, ResponseSpec, Route as RouteSpec};
use crate::error::{decode, encode};
use crate::{Error, Method, Principal, Request, Response, Result, Role, schema};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};

/// One call to a route: its path and query parameters decoded into `P`, its
/// JSON body into `B`, and who is calling.
///
/// `P` is a struct whose fields are named after the template's `{segments}`
/// (path parameters) and the query parameters; use `()` for none, and
/// `Option` fields for optional query parameters. Doc comments on the fields
/// become the parameters' descriptions.
pub struct Call<P = (), B = ()> {
    pub params: P,
    pub body: B,
    pub principal: Principal,
    /// The raw request: headers, the concrete path, the query as sent.
    pub request: Request,
}

impl<P, B> Call<P, B> {
    /// A request header by name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// Decodes the request, runs the handler and encodes its output (none for `204`).
type Handler = Box<dyn Fn(Request, u16) -> Result<Option<String>>>;

/// The schemas of a route, computed only when the host asks for the manifest.
struct Schemas {
    params: Vec<Param>,
    body: Option<serde_json::Value>,
    response: Option<serde_json::Value>,
}

/// A REST operation mounted at `/api/v1/{plugin}{path}`; build one with
/// [`get`], [`post`], [`put`], [`patch`] or [`delete`] and refine it with the
/// builder methods.
pub struct Route {
    method: Method,
    path: String,
    summary: String,
    description: String,
    status: u16,
    min_role: Role,
    schemas: fn(&str) -> Schemas,
    handler: Handler,
}

/// `GET path`: `P` from the path and query, no body, `O` as `200`.
pub fn get<P, O>(path: &str, handler: impl Fn(Call<P>) -> Result<O> + 'static) -> Route
where
    P: DeserializeOwned + JsonSchema,
    O: Serialize + JsonSchema,
{
    route(Method::Get, path, 200, handler)
}

/// `POST path`: `P` from the path and query, `B` from the JSON body, `O` as `201`.
pub fn post<P, B, O>(path: &str, handler: impl Fn(Call<P, B>) -> Result<O> + 'static) -> Route
where
    P: DeserializeOwned + JsonSchema,
    B: DeserializeOwned + JsonSchema,
    O: Serialize + JsonSchema,
{
    route(Method::Post, path, 201, handler)
}

/// `PUT path`: like [`post`], answering `200`.
pub fn put<P, B, O>(path: &str, handler: impl Fn(Call<P, B>) -> Result<O> + 'static) -> Route
where
    P: DeserializeOwned + JsonSchema,
    B: DeserializeOwned + JsonSchema,
    O: Serialize + JsonSchema,
{
    route(Method::Put, path, 200, handler)
}

/// `PATCH path`: like [`post`], answering `200`.
pub fn patch<P, B, O>(path: &str, handler: impl Fn(Call<P, B>) -> Result<O> + 'static) -> Route
where
    P: DeserializeOwned + JsonSchema,
    B: DeserializeOwned + JsonSchema,
    O: Serialize + JsonSchema,
{
    route(Method::Patch, path, 200, handler)
}

/// `DELETE path`: `P` from the path and query, no body, `204` with no content.
pub fn delete<P>(path: &str, handler: impl Fn(Call<P>) -> Result<()> + 'static) -> Route
where
    P: DeserializeOwned + JsonSchema,
{
    route(Method::Delete, path, 204, handler)
}

fn route<P, B, O>(method: Method, path: &str, status: u16, handler: impl Fn(Call<P, B>) -> Result<O> + 'static) -> Route
where
    P: DeserializeOwned + JsonSchema,
    B: DeserializeOwned + JsonSchema,
    O: Serialize + JsonSchema,
{
    Route {
        method,
        path: path.into(),
        summary: String::new(),
        description: String::new(),
        status,
        min_role: Role::Developer,
        schemas: |path| Schemas {
            params: schema::params::<P>(path),
            body: schema::of::<B>(),
            response: schema::of::<O>(),
        },
        handler: Box::new(move |request, status| {
            let call = Call {
                params: params_of(&request)?,
                body: serde_json::from_str(request.body.as_deref().unwrap_or("null")).map_err(decode)?,
                principal: request.principal.clone(),
                request,
            };
            let output = handler(call)?;
            if status == 204 { Ok(None) } else { serde_json::to_string(&output).map(Some).map_err(encode) }
        }),
    }
}

impl Route {
    /// A one-line summary for the API docs.
    pub fn summary(mut self, summary: &str) -> Self {
        self.summary = summary.into();
        self
    }

    /// What the operation does and what its figures mean, in plain words (Markdown).
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.into();
        self
    }

    /// The success status, when not the method's default.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The lowest role that may call it (default `developer`); the host refuses
    /// the others with `403` before the plugin runs.
    pub fn min_role(mut self, role: Role) -> Self {
        self.min_role = role;
        self
    }

    /// The route as the manifest declares it.
    pub(crate) fn spec(&self) -> RouteSpec {
        let schemas = (self.schemas)(&self.path);
        RouteSpec {
            method: self.method,
            path: self.path.clone(),
            summary: self.summary.clone(),
            description: self.description.clone(),
            params: schemas.params,
            body_schema: schemas.body.map(|body| body.to_string()),
            responses: vec![ResponseSpec {
                status: self.status,
                // The response type's doc comment, when it has one.
                description: schemas
                    .response
                    .as_ref()
                    .and_then(|schema| schema.get("description")?.as_str().map(String::from))
                    .unwrap_or_else(|| reason(self.status).into()),
                schema: schemas.response.filter(|_| self.status != 204).map(|schema| schema.to_string()),
            }],
            min_role: self.min_role,
        }
    }

    /// True when this route is the one the host matched for `request`.
    pub(crate) fn serves(&self, method: Method, template: &str) -> bool {
        self.method == method && self.path == template
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn required_role(&self) -> Role {
        self.min_role
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn method(&self) -> Method {
        self.method
    }
}

/// Hands a request to the route the host matched (the host has already checked
/// the role and validated parameters and body against the schemas).
pub fn dispatch(routes: Vec<Route>, request: Request) -> Result<Response> {
    let route = routes
        .into_iter()
        .find(|route| route.serves(request.method, &request.route))
        .ok_or_else(|| Error::not_found(format!("no handler for {}", request.route)))?;
    let body = (route.handler)(request, route.status)?;
    let headers = body.iter().map(|_| ("content-type".into(), "application/json".into())).collect();
    Ok(Response { status: route.status, headers, body })
}

/// Path and query parameters decoded together, as a form would be. A route
/// declaring none (`()`) ignores stray query parameters, as the host does.
fn params_of<P: DeserializeOwned>(request: &Request) -> Result<P> {
    let pairs: Vec<(&str, &str)> =
        request.path_params.iter().chain(&request.query).map(|(key, value)| (key.as_str(), value.as_str())).collect();
    let encoded = serde_urlencoded::to_string(pairs).map_err(Error::internal)?;
    serde_urlencoded::from_str(&encoded)
        .or_else(|err| serde_json::from_value(serde_json::Value::Null).map_err(|_| Error::invalid(err)))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        _ => "Success",
    }
}
