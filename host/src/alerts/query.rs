//! Reading alerts: who may see which, filtered lists newest first, and one
//! alert with its history.

use super::model::{AlertError, Severity, State};
use crate::auth::{Principal, Role};
use crate::store::entities::{alert, alert_label, alert_transition};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// An alert about one person (label `user`) is theirs and their managers';
/// the rest of the org's alerts are for managers and above.
pub fn visible(principal: &Principal, found: &alert::Model) -> bool {
    found.org == principal.org_id
        && (principal.role >= Role::Manager || found.subject.as_deref() == Some(principal.user_id.as_str()))
}

/// What a list asks for; empty vectors mean any.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub states: Vec<State>,
    pub severities: Vec<Severity>,
    pub source: Option<String>,
    /// Every (name, value) must be a label of the alert.
    pub labels: Vec<(String, String)>,
    /// Alerts open at some time in `[since, until)`.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// The alerts `principal` may see that match `filter`, newest first, `limit`
/// of them after the cursor `before` (an alert id).
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &Filter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<alert::Model>, AlertError> {
    let org = principal.org_id.as_str();
    let mut query = alert::Entity::find().filter(alert::Column::Org.eq(org));
    if principal.role < Role::Manager {
        query = query.filter(alert::Column::Subject.eq(principal.user_id.as_str()));
    }
    if !filter.states.is_empty() {
        query = query.filter(alert::Column::State.is_in(filter.states.iter().map(|state| state.as_str())));
    }
    if !filter.severities.is_empty() {
        query = query.filter(alert::Column::Severity.is_in(filter.severities.iter().map(|severity| severity.as_str())));
    }
    if let Some(source) = &filter.source {
        query = query.filter(alert::Column::Source.eq(source.as_str()));
    }
    for (name, value) in &filter.labels {
        let labelled = Query::select()
            .column(alert_label::Column::AlertId)
            .from(alert_label::Entity)
            .and_where(alert_label::Column::Org.eq(org))
            .and_where(alert_label::Column::Name.eq(name.as_str()))
            .and_where(alert_label::Column::Value.eq(value.as_str()))
            .to_owned();
        query = query.filter(alert::Column::Id.in_subquery(labelled));
    }
    if let Some(until) = filter.until {
        query = query.filter(alert::Column::StartedAt.lt(until));
    }
    if let Some(since) = filter.since {
        query = query.filter(
            Condition::any().add(alert::Column::ResolvedAt.is_null()).add(alert::Column::ResolvedAt.gte(since)),
        );
    }
    if let Some(before) = before {
        query = query.filter(alert::Column::Id.lt(before));
    }
    Ok(query.order_by_desc(alert::Column::Id).limit(limit).all(db).await?)
}

/// One alert `principal` may see; not found otherwise, so ids of other
/// people's alerts reveal nothing.
pub async fn get(db: &impl ConnectionTrait, principal: &Principal, id: &str) -> Result<alert::Model, AlertError> {
    alert::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .filter(|found| visible(principal, found))
        .ok_or_else(|| AlertError::NotFound(format!("no alert {id} in this org")))
}

/// The alert's transitions, oldest first.
pub async fn history(db: &impl ConnectionTrait, id: &str) -> Result<Vec<alert_transition::Model>, AlertError> {
    Ok(alert_transition::Entity::find()
        .filter(alert_transition::Column::AlertId.eq(id))
        .order_by_asc(alert_transition::Column::Seq)
        .all(db)
        .await?)
}

/// The occurrence of the same key after this one, if it fired again.
pub async fn next_occurrence(db: &impl ConnectionTrait, found: &alert::Model) -> Result<Option<String>, AlertError> {
    Ok(alert::Entity::find()
        .select_only()
        .column(alert::Column::Id)
        .filter(alert::Column::PreviousId.eq(found.id.as_str()))
        .filter(alert::Column::Org.eq(found.org.as_str()))
        .into_tuple()
        .one(db)
        .await?)
}
