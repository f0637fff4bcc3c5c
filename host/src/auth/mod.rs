//! Who is calling. Identity (orgs, users, tokens) is not built yet: until it is,
//! every request acts as the local operator, the owner of org `default`, and
//! route roles are documented but not enforced. This module is where token
//! checks will go, so handlers already take the principal from here.

use crate::runtime::wit::{Principal, Role};

/// The org every request belongs to until identity exists.
pub const DEFAULT_ORG: &str = "default";

/// The principal of a request.
pub fn principal_for(_request: &poem::Request) -> Principal {
    Principal {
        user_id: "local-operator".into(),
        org_id: DEFAULT_ORG.into(),
        role: Role::Owner,
    }
}
