//! `identity`: users of the caller's org, by id, by external login, or all.

use super::storage::decode_cursor;
use crate::capabilities::state::CallState;
use crate::identity::{self, ExternalIdentity as HostIdentity};
use crate::store::cursor;
use crate::store::entities::{user, user_identity};
use crate::wit::PluginError;
use crate::wit::devpulse::plugin::identity::{ExternalIdentity, Host, User, UserPage};
use sea_orm::{DatabaseConnection, EntityTrait};

const MAX_PAGE: u32 = 200;

fn unavailable(err: impl std::fmt::Display) -> PluginError {
    tracing::error!("identity lookup failed: {err}");
    PluginError::Unavailable("identity is unavailable".into())
}

async fn to_wit(db: &DatabaseConnection, user: user::Model) -> Result<User, PluginError> {
    let identities = identity::identities_of(db, &user.id).await.map_err(unavailable)?;
    Ok(User {
        role: crate::auth::Role::parse(&user.role).unwrap_or(crate::auth::Role::Developer).into(),
        identities: identities
            .into_iter()
            .map(|HostIdentity { provider, login }| ExternalIdentity { provider, login })
            .collect(),
        id: user.id,
        display_name: user.display_name,
        email: user.email,
        time_zone: user.time_zone,
    })
}

impl CallState {
    fn org(&self) -> Result<String, PluginError> {
        self.scope
            .as_ref()
            .map(|scope| scope.org.clone())
            .ok_or_else(|| PluginError::Denied("identity is not available while describing the plugin".into()))
    }

    async fn identity_get(&mut self, id: String) -> Result<Option<User>, PluginError> {
        let org = self.org()?;
        let db = &self.services.read;
        match identity::user_in_org(db, &org, &id).await.map_err(unavailable)? {
            Some(user) => Ok(Some(to_wit(db, user).await?)),
            None => Ok(None),
        }
    }

    async fn identity_find(&mut self, provider: String, login: String) -> Result<Option<User>, PluginError> {
        let org = self.org()?;
        let db = &self.services.read;
        let Some(link) =
            user_identity::Entity::find_by_id((org.clone(), provider, login)).one(db).await.map_err(unavailable)?
        else {
            return Ok(None);
        };
        match identity::user_in_org(db, &org, &link.user_id).await.map_err(unavailable)? {
            Some(user) => Ok(Some(to_wit(db, user).await?)),
            None => Ok(None),
        }
    }

    async fn identity_list(&mut self, cursor: Option<String>, limit: u32) -> Result<UserPage, PluginError> {
        let org = self.org()?;
        let db = &self.services.read;
        let after = cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = limit.clamp(1, MAX_PAGE);
        let mut rows =
            identity::list_users(db, &org, after.as_deref(), u64::from(limit) + 1).await.map_err(unavailable)?;
        let next_cursor = cursor::next_page(&mut rows, limit as usize, |user| &user.id);
        let mut users = Vec::with_capacity(rows.len());
        for user in rows {
            users.push(to_wit(db, user).await?);
        }
        Ok(UserPage { users, next_cursor })
    }
}

impl Host for CallState {
    async fn get_user(&mut self, id: String) -> wasmtime::Result<Result<Option<User>, PluginError>> {
        Ok(self.identity_get(id).await)
    }

    async fn find_by_identity(
        &mut self,
        provider: String,
        login: String,
    ) -> wasmtime::Result<Result<Option<User>, PluginError>> {
        Ok(self.identity_find(provider, login).await)
    }

    async fn list_users(
        &mut self,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<UserPage, PluginError>> {
        Ok(self.identity_list(cursor, limit).await)
    }
}
