//! `/api/v1/orgs`: for instance operators, so one server can host many orgs.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::Cursor;
use super::params::{Email, Text, TimeZone};
use super::tokens::CreatedToken;
use super::users::{UserView, view};
use crate::audit::{self, Entry};
use crate::auth::Role;
use crate::auth::tokens::{self, NewToken};
use crate::identity::{self, NewUser};
use crate::store::entities::org;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::TransactionTrait;

#[derive(Tags)]
enum OrgTag {
    /// Organisations on this server (operators only).
    Orgs,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrgView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<org::Model> for OrgView {
    fn from(org: org::Model) -> Self {
        OrgView {
            created_at: chrono::DateTime::from_timestamp_millis(org.created_at),
            id: org.id,
            slug: org.slug,
            name: org.name,
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrgPage {
    pub items: Vec<OrgView>,
    pub next_cursor: Option<String>,
}

/// The first owner of a new org.
#[derive(Object)]
pub struct NewOwner {
    /// 1 to 200 characters, not all blank.
    #[oai(validator(min_length = 1, max_length = 200, pattern = r"[^\s\x1c-\x1f]"))]
    pub display_name: Text,
    pub email: Email,
    /// UTC when absent.
    #[oai(nullable)]
    pub time_zone: Option<TimeZone>,
}

#[derive(Object)]
pub struct CreateOrg {
    /// Lowercase letters, digits and `-`, starting with a letter; appears in webhook URLs.
    #[oai(validator(pattern = "^[a-z][a-z0-9-]{1,62}$"))]
    pub slug: Text,
    /// Not all blank.
    #[oai(validator(min_length = 1, max_length = 200, pattern = r"[^\s\x1c-\x1f]"))]
    pub name: Text,
    pub owner: NewOwner,
}

/// The new org, its owner, and a token for the owner (secret shown once).
#[derive(Object)]
pub struct CreatedOrg {
    pub org: OrgView,
    pub owner: UserView,
    pub owner_token: CreatedToken,
}

#[derive(ApiResponse)]
enum Created {
    #[oai(status = 201)]
    Created(Json<CreatedOrg>),
}

pub struct OrgsApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "OrgTag::Orgs")]
impl OrgsApi {
    /// Every org on this server (operator tokens only).
    #[oai(path = "/orgs", method = "get", operation_id = "listOrgs")]
    async fn list(
        &self,
        auth: BearerAuth,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<OrgPage>, ApiError> {
        let principal = self.state.principal(&auth).await?;
        principal.require_operator()?;
        let after = cursor.0.map(|cursor| cursor.0);
        let mut rows = identity::list_orgs(self.state.runtime.db(), after.as_deref(), u64::from(limit.0) + 1).await?;
        let next_cursor = pagination::next(&mut rows, limit.0, |org| &org.id);
        Ok(Json(OrgPage { items: rows.into_iter().map(OrgView::from).collect(), next_cursor }))
    }

    /// Creates an org with its first owner and a token for them (operator tokens only).
    #[oai(path = "/orgs", method = "post", operation_id = "createOrg")]
    async fn create(&self, auth: BearerAuth, body: Json<CreateOrg>) -> Result<Created, ApiError> {
        let principal = self.state.principal(&auth).await?;
        principal.require_operator()?;
        let body = body.0;
        let txn = self.state.runtime.db().begin().await?;
        let org = identity::create_org(&txn, &body.slug.0, &body.name.0).await?;
        let owner = identity::create_user(
            &txn,
            &org.id,
            NewUser {
                display_name: body.owner.display_name.0,
                email: body.owner.email.0,
                role: Role::Owner,
                time_zone: body.owner.time_zone.unwrap_or_default().name().to_owned(),
                identities: Vec::new(),
            },
        )
        .await?;
        let token = tokens::create(
            &txn,
            NewToken {
                org_id: &org.id,
                user_id: &owner.id,
                name: "owner",
                expires_at: None,
                operator: false,
                format: Default::default(),
            },
        )
        .await
        .map_err(ApiError::unavailable)?;
        let details = serde_json::json!({"slug": org.slug, "owner": owner.id});
        audit::record(&txn, Entry::by(&principal, "org.create", &format!("org/{}", org.id)).details(details.clone()))
            .await?;
        // The new org's log names no one from the operator's org.
        audit::record(&txn, Entry::system(&org.id, "org.create", &format!("org/{}", org.id)).details(details.clone()))
            .await?;
        let owner = view(&txn, owner).await?;
        txn.commit().await?;
        Ok(Created::Created(Json(CreatedOrg {
            org: org.into(),
            owner,
            owner_token: CreatedToken { token: token.token.into(), secret: token.secret },
        })))
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}
