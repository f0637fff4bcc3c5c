//! The errors every authenticated operation may answer, as one documented type.

use super::problem::Problem;
use crate::auth::AuthError;
use crate::identity::IdentityError;
use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, SecurityScheme};

/// `Authorization: Bearer <token>`; tokens come from `POST /api/v1/tokens`, the
/// bootstrap file or `devpulse token create`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct BearerAuth(pub poem_openapi::auth::Bearer);

/// A problem document with its status.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The input is invalid (`urn:devpulse:problem:invalid-input`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid bearer token (`urn:devpulse:problem:unauthorized`).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The caller's role is too low (`urn:devpulse:problem:forbidden`).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// Nothing by that id in the caller's org (`urn:devpulse:problem:not-found`).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The change conflicts with the current state (`urn:devpulse:problem:conflict`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The database did not answer (`urn:devpulse:problem:unavailable`).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest(Json(Problem::bad_request(detail)))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::NotFound(Json(Problem::not_found(detail)))
    }

    pub fn unavailable(err: impl std::fmt::Display) -> Self {
        tracing::error!("storage failed: {err}");
        ApiError::Unavailable(Json(Problem::unavailable("the database is unavailable")))
    }

    /// The problem document, for callers outside poem-openapi.
    pub fn into_problem(self) -> Problem {
        match self {
            ApiError::BadRequest(p)
            | ApiError::Unauthorized(p)
            | ApiError::Forbidden(p)
            | ApiError::NotFound(p)
            | ApiError::Conflict(p)
            | ApiError::Unavailable(p) => p.0,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing | AuthError::Invalid => {
                ApiError::Unauthorized(Json(Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", err.to_string())))
            }
            AuthError::Forbidden(_) | AuthError::NotOperator => {
                ApiError::Forbidden(Json(Problem::new(StatusCode::FORBIDDEN, "forbidden", err.to_string())))
            }
            AuthError::Store(err) => ApiError::unavailable(err),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(err: IdentityError) -> Self {
        match err {
            IdentityError::Invalid(detail) => ApiError::bad_request(detail),
            IdentityError::NotFound(detail) => ApiError::not_found(detail),
            IdentityError::Conflict(detail) => {
                ApiError::Conflict(Json(Problem::new(StatusCode::CONFLICT, "conflict", detail)))
            }
            IdentityError::Forbidden(detail) => {
                ApiError::Forbidden(Json(Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)))
            }
            IdentityError::Db(err) => ApiError::unavailable(err),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        ApiError::unavailable(err)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError::unavailable(err)
    }
}
