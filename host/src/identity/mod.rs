//! Orgs, users and their external identities, with the rules that protect them:
//! only owners make owners, admins cannot touch owners, and an org always keeps
//! at least one owner.

pub mod bootstrap;

use crate::auth::{Principal, Role};
use crate::store::entities::{org, token, user, user_identity};
use crate::store::now_ms;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::str::FromStr;

/// An account of a user elsewhere.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExternalIdentity {
    /// For example `github`.
    pub provider: String,
    /// The login there, for example `octocat`.
    pub login: String,
}

/// What a new user needs.
pub struct NewUser {
    pub display_name: String,
    pub email: String,
    pub role: Role,
    pub time_zone: String,
    pub identities: Vec<ExternalIdentity>,
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub time_zone: Option<String>,
    pub identities: Option<Vec<ExternalIdentity>>,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn valid_slug(slug: &str) -> bool {
    let mut bytes = slug.bytes();
    (2..=63).contains(&slug.len())
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks an IANA time zone name such as `Europe/Berlin`.
pub fn check_time_zone(zone: &str) -> Result<(), IdentityError> {
    chrono_tz::Tz::from_str(zone)
        .map(|_| ())
        .map_err(|_| IdentityError::Invalid(format!("{zone:?} is not an IANA time zone such as Europe/Berlin")))
}

fn check_user_fields(display_name: &str, email: &str) -> Result<(), IdentityError> {
    if display_name.trim().is_empty() || display_name.chars().count() > 200 {
        return Err(IdentityError::Invalid("display_name must be 1 to 200 characters".into()));
    }
    check_email(email)
}

/// An email address: a local part and a domain around an `@`, no whitespace,
/// at most 320 characters.
pub fn check_email(email: &str) -> Result<(), IdentityError> {
    let valid = email.chars().count() <= 320
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if valid { Ok(()) } else { Err(IdentityError::Invalid(format!("{email:?} is not an email address"))) }
}

pub async fn create_org(db: &impl ConnectionTrait, slug: &str, name: &str) -> Result<org::Model, IdentityError> {
    if !valid_slug(slug) {
        return Err(IdentityError::Invalid("slugs are 2 to 63 of a-z, 0-9 and '-', starting with a letter".into()));
    }
    if name.trim().is_empty() {
        return Err(IdentityError::Invalid("an org needs a name".into()));
    }
    if org::Entity::find().filter(org::Column::Slug.eq(slug)).one(db).await?.is_some() {
        return Err(IdentityError::Conflict(format!("an org with slug {slug} exists")));
    }
    Ok(org::ActiveModel {
        id: Set(ulid::Ulid::new().to_string()),
        slug: Set(slug.into()),
        name: Set(name.into()),
        created_at: Set(now_ms()),
    }
    .insert(db)
    .await?)
}

pub async fn org_by_id(db: &impl ConnectionTrait, id: &str) -> Result<Option<org::Model>, DbErr> {
    org::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn org_by_slug(db: &impl ConnectionTrait, slug: &str) -> Result<Option<org::Model>, DbErr> {
    org::Entity::find().filter(org::Column::Slug.eq(slug)).one(db).await
}

/// Orgs after `after` (an id), in id order.
pub async fn list_orgs(db: &impl ConnectionTrait, after: Option<&str>, limit: u64) -> Result<Vec<org::Model>, DbErr> {
    let mut query = org::Entity::find();
    if let Some(after) = after {
        query = query.filter(org::Column::Id.gt(after));
    }
    query.order_by_asc(org::Column::Id).limit(limit).all(db).await
}

async fn set_identities(
    db: &impl ConnectionTrait,
    org_id: &str,
    user_id: &str,
    identities: &[ExternalIdentity],
) -> Result<(), IdentityError> {
    user_identity::Entity::delete_many().filter(user_identity::Column::UserId.eq(user_id)).exec(db).await?;
    for identity in identities {
        if identity.provider.is_empty() || identity.login.is_empty() {
            return Err(IdentityError::Invalid("identities need a provider and a login".into()));
        }
        let taken =
            user_identity::Entity::find_by_id((org_id.to_owned(), identity.provider.clone(), identity.login.clone()))
                .one(db)
                .await?;
        if taken.is_some() {
            return Err(IdentityError::Conflict(format!(
                "{} login {} already belongs to another user",
                identity.provider, identity.login
            )));
        }
        user_identity::ActiveModel {
            org_id: Set(org_id.into()),
            provider: Set(identity.provider.clone()),
            login: Set(identity.login.clone()),
            user_id: Set(user_id.into()),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

pub async fn create_user(db: &impl ConnectionTrait, org_id: &str, new: NewUser) -> Result<user::Model, IdentityError> {
    check_user_fields(&new.display_name, &new.email)?;
    check_time_zone(&new.time_zone)?;
    let user = user::ActiveModel {
        id: Set(ulid::Ulid::new().to_string()),
        org_id: Set(org_id.into()),
        display_name: Set(new.display_name),
        email: Set(new.email),
        role: Set(new.role.as_str().into()),
        time_zone: Set(new.time_zone),
        created_at: Set(now_ms()),
    }
    .insert(db)
    .await?;
    set_identities(db, org_id, &user.id, &new.identities).await?;
    Ok(user)
}

/// A user of `org_id`; users of other orgs do not exist for the caller.
pub async fn user_in_org(db: &impl ConnectionTrait, org_id: &str, id: &str) -> Result<Option<user::Model>, DbErr> {
    Ok(user::Entity::find_by_id(id.to_owned()).one(db).await?.filter(|user| user.org_id == org_id))
}

/// The user with `name` as display name in `org_id`, if any (for the command line).
pub async fn user_by_name(db: &impl ConnectionTrait, org_id: &str, name: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find().filter(user::Column::OrgId.eq(org_id)).filter(user::Column::DisplayName.eq(name)).one(db).await
}

pub async fn identities_of(db: &impl ConnectionTrait, user_id: &str) -> Result<Vec<ExternalIdentity>, DbErr> {
    Ok(user_identity::Entity::find()
        .filter(user_identity::Column::UserId.eq(user_id))
        .order_by_asc(user_identity::Column::Provider)
        .all(db)
        .await?
        .into_iter()
        .map(|row| ExternalIdentity { provider: row.provider, login: row.login })
        .collect())
}

/// Users of `org_id` after `after` (an id), in id order.
pub async fn list_users(
    db: &impl ConnectionTrait,
    org_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<user::Model>, DbErr> {
    let mut query = user::Entity::find().filter(user::Column::OrgId.eq(org_id));
    if let Some(after) = after {
        query = query.filter(user::Column::Id.gt(after));
    }
    query.order_by_asc(user::Column::Id).limit(limit).all(db).await
}

async fn owners(db: &impl ConnectionTrait, org_id: &str) -> Result<u64, DbErr> {
    user::Entity::find()
        .filter(user::Column::OrgId.eq(org_id))
        .filter(user::Column::Role.eq(Role::Owner.as_str()))
        .count(db)
        .await
}

/// The owner rules for `actor` changing `target` from its role to `new_role`
/// (`None`: removing it).
async fn check_owner_rules(
    db: &impl ConnectionTrait,
    actor: &Principal,
    target: &user::Model,
    new_role: Option<Role>,
) -> Result<(), IdentityError> {
    let is_owner = target.role == Role::Owner.as_str();
    if new_role == Some(Role::Owner) && !is_owner && actor.role < Role::Owner {
        return Err(IdentityError::Forbidden("only owners can make owners".into()));
    }
    let loses_owner = is_owner && new_role != Some(Role::Owner);
    if loses_owner && actor.role < Role::Owner {
        return Err(IdentityError::Forbidden("an admin cannot remove or demote an owner".into()));
    }
    if loses_owner && owners(db, &target.org_id).await? <= 1 {
        return Err(IdentityError::Conflict("the last owner of an org cannot be removed or demoted".into()));
    }
    Ok(())
}

/// Creates a user in the actor's org, enforcing who may grant which role.
pub async fn create_user_as(
    db: &impl ConnectionTrait,
    actor: &Principal,
    new: NewUser,
) -> Result<user::Model, IdentityError> {
    if new.role == Role::Owner && actor.role < Role::Owner {
        return Err(IdentityError::Forbidden("only owners can make owners".into()));
    }
    create_user(db, &actor.org_id, new).await
}

pub async fn update_user(
    db: &impl ConnectionTrait,
    actor: &Principal,
    id: &str,
    patch: UserPatch,
) -> Result<user::Model, IdentityError> {
    let user =
        user_in_org(db, &actor.org_id, id).await?.ok_or_else(|| IdentityError::NotFound(format!("no user {id}")))?;
    if let Some(role) = patch.role {
        check_owner_rules(db, actor, &user, Some(role)).await?;
    } else if user.role == Role::Owner.as_str() && actor.role < Role::Owner {
        return Err(IdentityError::Forbidden("an admin cannot change an owner".into()));
    }
    let display_name = patch.display_name.unwrap_or_else(|| user.display_name.clone());
    let email = patch.email.unwrap_or_else(|| user.email.clone());
    check_user_fields(&display_name, &email)?;
    if let Some(zone) = &patch.time_zone {
        check_time_zone(zone)?;
    }
    if let Some(identities) = &patch.identities {
        set_identities(db, &user.org_id, &user.id, identities).await?;
    }
    let mut row = user.into_active_model();
    row.display_name = Set(display_name);
    row.email = Set(email);
    if let Some(role) = patch.role {
        row.role = Set(role.as_str().into());
    }
    if let Some(zone) = patch.time_zone {
        row.time_zone = Set(zone);
    }
    Ok(row.update(db).await?)
}

/// Removes a user of the actor's org, with their identities and tokens.
pub async fn delete_user(db: &impl ConnectionTrait, actor: &Principal, id: &str) -> Result<user::Model, IdentityError> {
    let user =
        user_in_org(db, &actor.org_id, id).await?.ok_or_else(|| IdentityError::NotFound(format!("no user {id}")))?;
    check_owner_rules(db, actor, &user, None).await?;
    user_identity::Entity::delete_many().filter(user_identity::Column::UserId.eq(id)).exec(db).await?;
    token::Entity::delete_many().filter(token::Column::UserId.eq(id)).exec(db).await?;
    user::Entity::delete_by_id(id.to_owned()).exec(db).await?;
    Ok(user)
}
