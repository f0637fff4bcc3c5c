//! A plugin's routes, compiled once at load: path templates to match requests
//! and JSON Schema validators to check them before the plugin is called.

use super::manifest::{ManifestError, Method, ParamDoc, ParamLocation, RouteDoc};
use jsonschema::Validator;
use serde::Serialize;
use serde_json::Value;

enum Segment {
    Literal(String),
    Param(String),
}

struct CompiledParam {
    doc: ParamDoc,
    validator: Validator,
}

/// One route, ready to match and validate.
pub struct CompiledRoute {
    pub doc: RouteDoc,
    segments: Vec<Segment>,
    params: Vec<CompiledParam>,
    body: Option<Validator>,
}

/// What matching a request against the table found.
pub enum RouteMatch<'a> {
    Found { route: &'a CompiledRoute, path_params: Vec<(String, String)> },
    MethodNotAllowed { allowed: Vec<Method> },
    NotFound,
}

/// One reason a request was refused, for the `errors` list of the problem document.
#[derive(Clone, Debug, Serialize)]
pub struct FieldError {
    /// `path`, `query` or `body`.
    pub location: &'static str,
    /// The parameter name, or a JSON pointer into the body.
    pub name: String,
    pub message: String,
}

/// All routes of one plugin.
#[derive(Default)]
pub struct RouteTable {
    routes: Vec<CompiledRoute>,
}

fn route_error(doc: &RouteDoc, reason: impl Into<String>) -> ManifestError {
    ManifestError::Route { route: format!("{} {}", doc.method.as_str(), doc.path), reason: reason.into() }
}

fn compile_schema(doc: &RouteDoc, what: &str, schema: &Value) -> Result<Validator, ManifestError> {
    jsonschema::validator_for(schema)
        .map_err(|err| route_error(doc, format!("{what} is not a valid JSON Schema: {err}")))
}

/// Parses a route's path template. Segments are literals of unreserved URL
/// characters (`A-Z a-z 0-9 - . _ ~`, never `.` or `..` alone) or whole
/// `{param}` segments; no empty segments and no percent-encoding, so a
/// template can never climb out of `/api/v1/{plugin}` once a client
/// normalises it.
fn parse_template(doc: &RouteDoc) -> Result<Vec<Segment>, ManifestError> {
    let Some(rest) = doc.path.strip_prefix('/') else {
        return Err(route_error(doc, "paths start with '/'"));
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|part| {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(route_error(doc, format!("bad parameter segment {part:?}")));
                }
                return Ok(Segment::Param(name.to_owned()));
            }
            if part.is_empty() {
                return Err(route_error(doc, "empty path segment"));
            }
            if part == "." || part == ".." {
                return Err(route_error(doc, format!("path segment {part:?} is not allowed")));
            }
            if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                return Err(route_error(
                    doc,
                    format!("bad path segment {part:?}: use A-Z, a-z, 0-9, '-', '.', '_' and '~' only"),
                ));
            }
            Ok(Segment::Literal(part.to_owned()))
        })
        .collect()
}

impl CompiledRoute {
    fn compile(doc: RouteDoc) -> Result<Self, ManifestError> {
        let segments = parse_template(&doc)?;
        for segment in &segments {
            if let Segment::Param(name) = segment
                && !doc.params.iter().any(|p| p.location == ParamLocation::Path && &p.name == name)
            {
                return Err(route_error(&doc, format!("path parameter {{{name}}} is not declared")));
            }
        }
        let params = doc
            .params
            .iter()
            .map(|param| {
                if param.location == ParamLocation::Path
                    && !segments.iter().any(|s| matches!(s, Segment::Param(n) if n == &param.name))
                {
                    return Err(route_error(&doc, format!("path parameter {} is not in the path", param.name)));
                }
                let validator = compile_schema(&doc, &format!("the schema of {}", param.name), &param.schema)?;
                Ok(CompiledParam { doc: param.clone(), validator })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let body =
            doc.body_schema.as_ref().map(|schema| compile_schema(&doc, "the body schema", schema)).transpose()?;
        for response in &doc.responses {
            if let Some(schema) = &response.schema {
                compile_schema(&doc, &format!("the schema of response {}", response.status), schema)?;
            }
        }
        Ok(CompiledRoute { doc, segments, params, body })
    }

    fn matches(&self, parts: &[&str]) -> Option<Vec<(String, String)>> {
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), percent_decode(part)?)),
            }
        }
        Some(params)
    }

    /// Checks parameters and body against the declared schemas; returns the body
    /// as JSON text, or every problem found.
    pub fn validate(
        &self,
        path_params: &[(String, String)],
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Option<String>, Vec<FieldError>> {
        let mut errors = Vec::new();
        for param in &self.params {
            let source = if param.doc.location == ParamLocation::Path { path_params } else { query };
            let raw = source.iter().find(|(name, _)| name == &param.doc.name).map(|(_, value)| value);
            match raw {
                None if param.doc.required => errors.push(FieldError {
                    location: param.doc.location.as_str(),
                    name: param.doc.name.clone(),
                    message: "is required".into(),
                }),
                None => {}
                Some(raw) => {
                    let value = coerce(raw, &param.doc.schema);
                    for error in param.validator.iter_errors(&value) {
                        errors.push(FieldError {
                            location: param.doc.location.as_str(),
                            name: param.doc.name.clone(),
                            message: error.to_string(),
                        });
                    }
                }
            }
        }
        let body_text = match (&self.body, body.is_empty()) {
            (None, true) => None,
            (None, false) => {
                errors.push(FieldError {
                    location: "body",
                    name: String::new(),
                    message: "this operation takes no body".into(),
                });
                None
            }
            // A body whose schema takes `null` may be left out.
            (Some(validator), true) if validator.is_valid(&Value::Null) => None,
            (Some(_), true) => {
                errors.push(FieldError {
                    location: "body",
                    name: String::new(),
                    message: "a JSON body is required".into(),
                });
                None
            }
            (Some(validator), false) => match serde_json::from_slice::<Value>(body) {
                Err(err) => {
                    errors.push(FieldError {
                        location: "body",
                        name: String::new(),
                        message: format!("not valid JSON: {err}"),
                    });
                    None
                }
                Ok(value) => {
                    for error in validator.iter_errors(&value) {
                        errors.push(FieldError {
                            location: "body",
                            name: error.instance_path.to_string(),
                            message: error.to_string(),
                        });
                    }
                    Some(value.to_string())
                }
            },
        };
        if errors.is_empty() { Ok(body_text) } else { Err(errors) }
    }
}

/// Turns a textual parameter into the JSON type its schema asks for, so that
/// `?limit=5` validates against `{"type": "integer"}`.
fn coerce(raw: &str, schema: &Value) -> Value {
    let parsed = match schema.get("type").and_then(Value::as_str) {
        Some("integer") => {
            raw.parse::<i64>().ok().map(Value::from).or_else(|| raw.parse::<u64>().ok().map(Value::from))
        }
        Some("number") => raw.parse::<f64>().ok().map(Value::from),
        Some("boolean") => raw.parse::<bool>().ok().map(Value::from),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(raw.to_owned()))
}

fn percent_decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(part).decode_utf8().ok().map(|s| s.into_owned())
}

impl RouteTable {
    pub fn compile(docs: &[RouteDoc]) -> Result<Self, ManifestError> {
        let mut routes: Vec<CompiledRoute> = Vec::new();
        for doc in docs {
            if routes.iter().any(|r| r.doc.method == doc.method && r.doc.path == doc.path) {
                return Err(route_error(doc, "declared twice"));
            }
            routes.push(CompiledRoute::compile(doc.clone())?);
        }
        Ok(RouteTable { routes })
    }

    /// Finds the route for `method` and `path` (relative to the plugin's
    /// prefix); `None` for a method no route can declare.
    pub fn find(&self, method: Option<Method>, path: &str) -> RouteMatch<'_> {
        let trimmed = path.trim_start_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() };
        let mut allowed = Vec::new();
        for route in &self.routes {
            if let Some(path_params) = route.matches(&parts) {
                if Some(route.doc.method) == method {
                    return RouteMatch::Found { route, path_params };
                }
                allowed.push(route.doc.method);
            }
        }
        if allowed.is_empty() { RouteMatch::NotFound } else { RouteMatch::MethodNotAllowed { allowed } }
    }
}
