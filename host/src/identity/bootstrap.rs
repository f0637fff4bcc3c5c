//! First start: an empty database gets org `default`, an owner and an operator
//! token, written to `<data dir>/bootstrap-token` (mode 0600) and logged once.

use crate::auth::Role;
use crate::auth::tokens::{self, NewToken};
use crate::identity::{self, NewUser};
use crate::store::entities::org;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, TransactionTrait};
use std::path::Path;

/// The file the first token is written to.
pub const TOKEN_FILE: &str = "bootstrap-token";

/// Creates the first org, owner and token when there is no org at all. Returns
/// the secret when it did.
pub async fn run(db: &DatabaseConnection, data_dir: &Path) -> anyhow::Result<Option<String>> {
    if org::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    let txn = db.begin().await?;
    let org = identity::create_org(&txn, "default", "Default").await?;
    let owner = identity::create_user(
        &txn,
        &org.id,
        NewUser {
            display_name: "Owner".into(),
            email: "owner@localhost".into(),
            role: Role::Owner,
            time_zone: "UTC".into(),
            identities: Vec::new(),
        },
    )
    .await?;
    let created = tokens::create(
        &txn,
        NewToken {
            org_id: &org.id,
            user_id: &owner.id,
            name: "bootstrap",
            expires_at: None,
            operator: true,
            format: Default::default(),
        },
    )
    .await?;
    crate::audit::record(
        &txn,
        crate::audit::Entry::system(&org.id, "org.bootstrap", &format!("org/{}", org.id))
            .details(serde_json::json!({"owner": owner.id, "token": created.token.id})),
    )
    .await?;
    txn.commit().await?;
    write_secret(&data_dir.join(TOKEN_FILE), &created.secret)?;
    tracing::warn!(
        token = %created.secret,
        file = %data_dir.join(TOKEN_FILE).display(),
        "first start: created org `default`, its owner and an operator token (shown once; also in the file)"
    );
    Ok(Some(created.secret))
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")
}
