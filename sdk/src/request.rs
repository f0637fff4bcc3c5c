//! Reading requests and declaring routes.

use crate::{Error, Method, Request, Role, Route, invalid};
use serde::de::DeserializeOwned;

/// A route with no parameters, no body, a `200` response and the `developer` role;
/// adjust the rest with struct update syntax.
pub fn route(method: Method, path: &str, summary: &str) -> Route {
    Route {
        method,
        path: path.into(),
        summary: summary.into(),
        description: String::new(),
        params: Vec::new(),
        body_schema: None,
        responses: Vec::new(),
        min_role: Role::Developer,
    }
}

/// Matches a request against route templates, for plugins with several routes.
pub trait Routes {
    /// True when the request matched `method` and the `template` from the manifest.
    fn is(&self, method: Method, template: &str) -> bool;
}

impl Routes for Request {
    fn is(&self, method: Method, template: &str) -> bool {
        self.method == method && self.route == template
    }
}

impl Request {
    /// A path parameter by name, as declared in the route template.
    pub fn param(&self, name: &str) -> Option<&str> {
        lookup(&self.path_params, name)
    }

    /// A query parameter by name.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        lookup(&self.query, name)
    }

    /// The body parsed as JSON (the host has already checked it against the schema).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let body = self.body.as_deref().ok_or_else(|| Error::InvalidInput("a JSON body is required".into()))?;
        serde_json::from_str(body).map_err(invalid)
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}
