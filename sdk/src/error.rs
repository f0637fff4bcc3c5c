//! Shorthands for the contract's [`Error`]: the host turns each case into a
//! problem document (404, 400, 403, 409, 503, 500).

use crate::Error;

impl Error {
    /// `404`: what was asked for does not exist.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Error::NotFound(what.to_string())
    }

    /// `400`: the input cannot be used; say why.
    pub fn invalid(why: impl std::fmt::Display) -> Self {
        Error::InvalidInput(why.to_string())
    }

    /// `409`: the request conflicts with the current state.
    pub fn conflict(why: impl std::fmt::Display) -> Self {
        Error::Conflict(why.to_string())
    }

    /// `500`: a fault in the plugin; the message is logged and shown.
    pub fn internal(why: impl std::fmt::Display) -> Self {
        Error::Internal(why.to_string())
    }
}

/// Reading JSON the plugin was given: bad input, a `400`.
pub(crate) fn decode(err: serde_json::Error) -> Error {
    Error::invalid(err)
}

/// Writing JSON the plugin produced: a plugin fault, a `500`.
pub(crate) fn encode(err: serde_json::Error) -> Error {
    Error::internal(err)
}
