//! `/api/v1/me` and `/api/v1/users`: people in the caller's org.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::Cursor;
use super::params::{Email, Text, TimeZone};
use crate::audit::{self, Entry};
use crate::auth::Role;
use crate::auth::authenticator::Subject;
use crate::identity::{self, ExternalIdentity, NewUser, UserPatch};
use crate::store::entities::user;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::{ConnectionTrait, TransactionTrait};

#[derive(Tags)]
enum UserTag {
    /// People in the caller's org, their roles and external identities.
    Users,
}

/// A user as the API shows it.
#[derive(Object)]
pub struct UserView {
    pub id: String,
    pub org_id: String,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    /// Daily figures are computed in it.
    pub time_zone: TimeZone,
    /// Accounts elsewhere, such as a GitHub login.
    pub identities: Vec<IdentityView>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One page of users, in creation order.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub next_cursor: Option<String>,
}

/// An account of a user elsewhere.
#[derive(Object, Clone)]
pub struct IdentityView {
    /// For example `github`.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub provider: Text,
    /// The login there, for example `octocat`.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub login: Text,
}

impl From<IdentityView> for ExternalIdentity {
    fn from(view: IdentityView) -> Self {
        ExternalIdentity { provider: view.provider.0, login: view.login.0 }
    }
}

impl From<ExternalIdentity> for IdentityView {
    fn from(identity: ExternalIdentity) -> Self {
        IdentityView { provider: Text(identity.provider), login: Text(identity.login) }
    }
}

#[derive(Object)]
pub struct CreateUser {
    /// 1 to 200 characters, not all blank.
    #[oai(validator(min_length = 1, max_length = 200, pattern = r"[^\s\x1c-\x1f]"))]
    pub display_name: Text,
    pub email: Email,
    pub role: Role,
    /// Daily figures are computed in it; UTC when absent.
    #[oai(nullable)]
    pub time_zone: Option<TimeZone>,
    /// None when absent.
    #[oai(nullable)]
    pub identities: Option<Vec<IdentityView>>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Object)]
pub struct UpdateUser {
    #[oai(nullable, validator(min_length = 1, max_length = 200, pattern = r"[^\s\x1c-\x1f]"))]
    pub display_name: Option<Text>,
    #[oai(nullable)]
    pub email: Option<Email>,
    #[oai(nullable)]
    pub role: Option<Role>,
    #[oai(nullable)]
    pub time_zone: Option<TimeZone>,
    /// Replaces all identities when present.
    #[oai(nullable)]
    pub identities: Option<Vec<IdentityView>>,
}

fn identities(views: Vec<IdentityView>) -> Vec<ExternalIdentity> {
    views.into_iter().map(ExternalIdentity::from).collect()
}

impl From<CreateUser> for NewUser {
    fn from(body: CreateUser) -> Self {
        NewUser {
            display_name: body.display_name.0,
            email: body.email.0,
            role: body.role,
            time_zone: body.time_zone.unwrap_or_default().name().to_owned(),
            identities: identities(body.identities.unwrap_or_default()),
        }
    }
}

impl From<UpdateUser> for UserPatch {
    fn from(body: UpdateUser) -> Self {
        UserPatch {
            display_name: body.display_name.map(String::from),
            email: body.email.map(|email| email.0),
            role: body.role,
            time_zone: body.time_zone.map(|zone| zone.name().to_owned()),
            identities: body.identities.map(identities),
        }
    }
}

#[derive(ApiResponse)]
enum Created {
    #[oai(status = 201)]
    Created(Json<UserView>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// The user, their identities and tokens are gone.
    #[oai(status = 204)]
    Deleted,
}

pub async fn view(db: &impl ConnectionTrait, user: user::Model) -> Result<UserView, ApiError> {
    Ok(UserView {
        identities: identity::identities_of(db, &user.id).await?.into_iter().map(IdentityView::from).collect(),
        role: Role::parse(&user.role).unwrap_or(Role::Developer),
        created_at: chrono::DateTime::from_timestamp_millis(user.created_at).unwrap_or_default(),
        id: user.id,
        org_id: user.org_id,
        display_name: user.display_name,
        email: user.email,
        time_zone: user.time_zone.parse().map(TimeZone).unwrap_or_default(),
    })
}

pub struct UsersApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "UserTag::Users")]
impl UsersApi {
    /// The caller: user, org and role.
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(&self, auth: BearerAuth) -> Result<Json<UserView>, ApiError> {
        let principal = self.state.principal(&auth).await?;
        let db = self.state.runtime.db();
        let user = identity::user_in_org(db, &principal.org_id, &principal.user_id)
            .await?
            .ok_or_else(|| ApiError::not_found("the caller's user no longer exists"))?;
        Ok(Json(view(db, user).await?))
    }

    /// Users of the caller's org (admin and above).
    #[oai(path = "/users", method = "get", operation_id = "listUsers")]
    async fn list(
        &self,
        auth: BearerAuth,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<UserPage>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let after = cursor.0.map(|cursor| cursor.0);
        let db = self.state.runtime.db();
        let mut rows = identity::list_users(db, &principal.org_id, after.as_deref(), u64::from(limit.0) + 1).await?;
        let next_cursor = pagination::next(&mut rows, limit.0, |user| &user.id);
        let mut items = Vec::with_capacity(rows.len());
        for user in rows {
            items.push(view(db, user).await?);
        }
        Ok(Json(UserPage { items, next_cursor }))
    }

    /// Adds a user to the caller's org (admin and above; only owners add owners).
    #[oai(path = "/users", method = "post", operation_id = "createUser")]
    async fn create(&self, auth: BearerAuth, body: Json<CreateUser>) -> Result<Created, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let txn = self.state.runtime.db().begin().await?;
        let user = identity::create_user_as(&txn, &principal, body.0.into()).await?;
        audit::record(
            &txn,
            Entry::by(&principal, "user.create", &format!("user/{}", user.id))
                .details(serde_json::json!({"role": user.role, "email": user.email})),
        )
        .await?;
        let view = view(&txn, user).await?;
        txn.commit().await?;
        Ok(Created::Created(Json(view)))
    }

    /// One user of the caller's org (admin and above).
    #[oai(path = "/users/:id", method = "get", operation_id = "getUser")]
    async fn get(&self, auth: BearerAuth, id: Path<String>) -> Result<Json<UserView>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let db = self.state.runtime.db();
        let user = identity::user_in_org(db, &principal.org_id, &id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no user {}", id.0)))?;
        Ok(Json(view(db, user).await?))
    }

    /// Changes a user (admin and above; admins cannot change owners, the last owner stays an owner).
    #[oai(path = "/users/:id", method = "patch", operation_id = "updateUser")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<String>,
        body: Json<UpdateUser>,
    ) -> Result<Json<UserView>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let role = body.0.role;
        let txn = self.state.runtime.db().begin().await?;
        let user = identity::update_user(&txn, &principal, &id, body.0.into()).await?;
        audit::record(
            &txn,
            Entry::by(&principal, "user.update", &format!("user/{}", user.id))
                .details(serde_json::json!({"role": role.map(Role::as_str)})),
        )
        .await?;
        let view = view(&txn, user).await?;
        txn.commit().await?;
        self.state.auth.invalidate(Subject::User(&view.id)).await;
        Ok(Json(view))
    }

    /// Removes a user with their tokens (admin and above; never the last owner).
    #[oai(path = "/users/:id", method = "delete", operation_id = "deleteUser")]
    async fn delete(&self, auth: BearerAuth, id: Path<String>) -> Result<Deleted, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let txn = self.state.runtime.db().begin().await?;
        let user = identity::delete_user(&txn, &principal, &id).await?;
        audit::record(
            &txn,
            Entry::by(&principal, "user.delete", &format!("user/{}", user.id))
                .details(serde_json::json!({"email": user.email})),
        )
        .await?;
        txn.commit().await?;
        self.state.auth.invalidate(Subject::User(&id)).await;
        Ok(Deleted::Deleted)
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}
