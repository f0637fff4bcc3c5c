//! People in the caller's org: map a GitHub login to a user, list the org.

use crate::Result;
use crate::host::identity as raw;

pub use raw::{ExternalIdentity, User, UserPage};

/// The user with this id in the caller's org.
pub fn user(id: &str) -> Result<Option<User>> {
    raw::get_user(id)
}

/// The user behind an external login, such as (`github`, `octocat`).
pub fn find_by_identity(provider: &str, login: &str) -> Result<Option<User>> {
    raw::find_by_identity(provider, login)
}

/// One page of the org's users; pass `next_cursor` back for the next.
pub fn users(cursor: Option<&str>, limit: u32) -> Result<UserPage> {
    raw::list_users(cursor, limit)
}
