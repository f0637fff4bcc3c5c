//! Pull requests with their figures and timelines. Times are RFC 3339; every
//! duration is in seconds and `null` when unknown.

use crate::ingest::{author_label, pull_key};
use crate::pull::{Moment, Pull};
use devpulse_sdk::prelude::*;

/// A pull request and its figures.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct PullView {
    pub repo: String,
    pub number: u64,
    pub title: String,
    /// The GitHub login.
    pub author: String,
    /// The DevPulse user the login maps to (`null` when none does).
    pub author_user: Option<String>,
    pub state: PullState,
    pub created_at: Option<String>,
    pub merged_at: Option<String>,
    pub additions: u64,
    pub deletions: u64,
    /// Reviews by people other than the author (bots excluded), not counting dismissed ones.
    pub reviews: u64,
    /// First commit (or creation when no commit is known) to merge.
    pub cycle_time_s: Option<f64>,
    /// First commit to ready for review (opened as non-draft, or marked ready).
    pub coding_time_s: Option<f64>,
    /// Ready for review to the first review or review comment by someone other than the author.
    pub pickup_time_s: Option<f64>,
    /// That first review to merge.
    pub review_time_s: Option<f64>,
    /// Merge to the first successful production deployment containing the merge.
    pub deploy_time_s: Option<f64>,
}

/// A pull request, its figures and the timeline they come from.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct PullDetail {
    #[serde(flatten)]
    pub pull: PullView,
    /// First commit to production deployment (DORA lead time for changes).
    pub lead_time_s: Option<f64>,
    /// Commits authored after the first review.
    pub rework_commits: u64,
    /// The deployment that shipped it.
    pub deployment: Option<String>,
    /// Every moment the figures come from, in time order, each with the id of
    /// its event (`GET /api/v1/events/{id}`).
    pub timeline: Vec<MomentView>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct MomentView {
    pub at: String,
    pub what: String,
    pub actor: Option<String>,
    /// A commit SHA, a deployment id.
    pub detail: Option<String>,
    pub event_id: String,
}

pub fn rfc3339(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(at).map(|at| at.to_rfc3339()).unwrap_or_default()
}

impl From<&Pull> for PullView {
    fn from(pull: &Pull) -> Self {
        let figures = pull.figures();
        PullView {
            repo: pull.repo.clone(),
            number: pull.number,
            title: pull.title.clone(),
            author: pull.author.clone(),
            author_user: pull.author_user.clone(),
            state: pull.state(),
            created_at: pull.created_at.map(rfc3339),
            merged_at: pull.merged_at.map(rfc3339),
            additions: pull.additions,
            deletions: pull.deletions,
            reviews: figures.reviews,
            cycle_time_s: figures.cycle_time_s,
            coding_time_s: figures.coding_time_s,
            pickup_time_s: figures.pickup_time_s,
            review_time_s: figures.review_time_s,
            deploy_time_s: figures.deploy_time_s,
        }
    }
}

/// Developers see their own pull requests; managers and above everyone's.
pub fn visible(pull: &Pull, principal: &Principal) -> bool {
    principal.role != Role::Developer || pull.author_user.as_deref() == Some(principal.user_id.as_str())
}

/// Where a pull request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PullState {
    Open,
    Merged,
    Closed,
}

/// Which pull requests to list.
#[derive(Deserialize, JsonSchema)]
pub struct PullFilter {
    /// `owner/name`.
    pub repo: Option<String>,
    /// A GitHub login or a DevPulse user id.
    pub author: Option<String>,
    pub state: Option<PullState>,
    /// Created at or after.
    pub from: Option<Time>,
    /// Created before.
    pub to: Option<Time>,
    /// Page size (50 by default).
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<Cursor>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct PullPage {
    pub items: Vec<PullView>,
    pub next_cursor: Option<String>,
}

pub fn list(call: Call<PullFilter>) -> Result<PullPage> {
    let filter = call.params;
    let from = filter.from.map(|time| time.0);
    let to = filter.to.map(|time| time.0);
    let limit = filter.limit.unwrap_or(50).clamp(1, 200) as usize;
    let prefix = match &filter.repo {
        Some(repo) => format!("pr/{repo}/"),
        None => "pr/".into(),
    };
    let mut items = Vec::new();
    let mut cursor = filter.cursor.map(|cursor| cursor.0);
    loop {
        let page = storage::scan::<Pull>(&prefix, cursor.as_deref(), 200)?;
        for (index, (_, pull)) in page.entries.iter().enumerate() {
            let created = pull.created_at.unwrap_or_default();
            let wanted = visible(pull, &call.principal)
                && filter.author.as_deref().is_none_or(|author| author == pull.author || author == author_label(pull))
                && filter.state.is_none_or(|state| state == pull.state())
                && from.is_none_or(|from| created >= from)
                && to.is_none_or(|to| created < to);
            if wanted {
                items.push(PullView::from(pull));
                if items.len() == limit {
                    // The next page starts after this entry: rescan from the
                    // cursor that led here, skipping what was read.
                    let next = if index + 1 < page.entries.len() || page.next_cursor.is_some() {
                        Some(resume_cursor(&prefix, cursor.as_deref(), index + 1)?)
                    } else {
                        None
                    };
                    return Ok(PullPage { items, next_cursor: next.flatten() });
                }
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(PullPage { items, next_cursor: None }),
        }
    }
}

/// The storage cursor positioned after the `skip`-th entry following `cursor`.
fn resume_cursor(prefix: &str, cursor: Option<&str>, skip: usize) -> Result<Option<String>> {
    let page = storage::scan::<serde_json::Value>(prefix, cursor, skip as u32)?;
    Ok(page.next_cursor)
}

/// Which pull request.
#[derive(Deserialize, JsonSchema)]
pub struct PullId {
    pub owner: String,
    pub repo: String,
    pub number: u64,
}

pub fn detail(call: Call<PullId>) -> Result<PullDetail> {
    let id = call.params;
    let repo = format!("{}/{}", id.owner, id.repo);
    let pull: Pull = storage::get(&pull_key(&repo, id.number))?
        .filter(|pull| visible(pull, &call.principal))
        .ok_or_else(|| Error::not_found(format!("no pull request {repo}#{} in this org", id.number)))?;
    let figures = pull.figures();
    Ok(PullDetail {
        pull: PullView::from(&pull),
        lead_time_s: figures.lead_time_s,
        rework_commits: figures.rework_commits,
        deployment: pull.deployment.clone(),
        timeline: pull
            .timeline()
            .into_iter()
            .map(|Moment { at, what, actor, detail, event_id }| MomentView {
                at: rfc3339(at),
                what,
                actor,
                detail,
                event_id,
            })
            .collect(),
    })
}
