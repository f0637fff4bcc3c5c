//! A pull request as the plugin knows it: facts gathered from events (each with
//! the id of the event it came from), and the figures derived from them. Facts
//! are merged so that the order and repetition of deliveries do not matter:
//! sets keyed by GitHub ids, earliest times, and descriptive fields taken from
//! the newest payload by `updated_at`.

use crate::announce::PullUpdated;
use crate::routes::PullState;
use devpulse_sdk::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// One review or review comment.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Review {
    pub by: String,
    pub at: Timestamp,
    /// A review (`approved`, `changes_requested`, `commented`) or `comment`.
    pub kind: String,
    pub dismissed: bool,
    /// Bots and the author do not count as reviewers.
    pub counts: bool,
    pub event_id: String,
}

/// A commit on the pull request's branch.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Commit {
    pub at: Timestamp,
    pub event_id: String,
}

/// One point of the timeline, with the event it came from.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Moment {
    pub at: Timestamp,
    /// `opened`, `ready_for_review`, `commit`, `review`, `comment`, `merged`,
    /// `closed`, `deployed`, ...
    pub what: String,
    pub actor: Option<String>,
    /// What it is about: a commit SHA, a review id, a deployment id.
    pub detail: Option<String>,
    pub event_id: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Pull {
    pub repo: String,
    pub number: u64,
    pub title: String,
    /// The GitHub login.
    pub author: String,
    /// The DevPulse user the login maps to, through `identity`.
    pub author_user: Option<String>,
    pub author_bot: bool,
    pub base_ref: String,
    pub head_ref: String,
    pub head_sha: String,
    /// Whether the base branch is the repository's default branch.
    pub into_default: bool,
    pub additions: u64,
    pub deletions: u64,
    pub created_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub merged_at: Option<Timestamp>,
    pub merge_sha: Option<String>,
    /// The earliest moment it was ready for review.
    pub ready_at: Option<Timestamp>,
    /// `updated_at` of the payload the descriptive fields come from.
    pub updated_at: Timestamp,
    pub commits: BTreeMap<String, Commit>,
    pub reviews: BTreeMap<String, Review>,
    pub deployed_at: Option<Timestamp>,
    pub deployment: Option<String>,
    pub timeline: BTreeMap<String, Moment>,
    /// Whether it is a draft now.
    #[serde(default)]
    pub draft: bool,
    /// Logins whose review is requested now.
    #[serde(default)]
    pub requested_reviewers: BTreeSet<String>,
    /// What `github.pull.updated` said of it last.
    #[serde(default)]
    pub announced: Option<PullUpdated>,
}

/// What a merged (or open) pull request's figures are; `None` when unknown.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Figures {
    /// First commit (or creation when no commit is known) to merge.
    pub cycle_time_s: Option<f64>,
    /// First commit to ready for review.
    pub coding_time_s: Option<f64>,
    /// Ready for review to the first review or review comment by someone other
    /// than the author (bots excluded).
    pub pickup_time_s: Option<f64>,
    /// That first review to merge.
    pub review_time_s: Option<f64>,
    /// Merge to the first successful production deployment containing it.
    pub deploy_time_s: Option<f64>,
    /// First commit to that deployment (DORA lead time for changes).
    pub lead_time_s: Option<f64>,
    /// Additions plus deletions.
    pub size: u64,
    /// Reviews by others (bots excluded), not counting dismissed ones.
    pub reviews: u64,
    /// Commits authored after the first review.
    pub rework_commits: u64,
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    ((to - from).max(0)) as f64 / 1000.0
}

impl Pull {
    pub fn state(&self) -> PullState {
        match (self.merged_at, self.closed_at) {
            (Some(_), _) => PullState::Merged,
            (None, Some(_)) => PullState::Closed,
            _ => PullState::Open,
        }
    }

    /// The first commit, or creation when no commit is known.
    pub fn started_at(&self) -> Option<Timestamp> {
        self.commits.values().map(|commit| commit.at).min().or(self.created_at)
    }

    /// The first review or review comment that counts.
    pub fn first_review_at(&self) -> Option<Timestamp> {
        self.reviews.values().filter(|review| review.counts).map(|review| review.at).min()
    }

    pub fn figures(&self) -> Figures {
        let started = self.started_at();
        let ready = self.ready_at.or(self.created_at);
        let first_review = self.first_review_at();
        let span = |from: Option<Timestamp>, to: Option<Timestamp>| Some(seconds(from?, to?));
        Figures {
            cycle_time_s: span(started, self.merged_at),
            coding_time_s: span(started, ready.map(|ready| ready.max(started.unwrap_or(ready)))),
            pickup_time_s: span(ready, first_review.map(|first| first.max(ready.unwrap_or(first)))),
            review_time_s: span(first_review, self.merged_at),
            deploy_time_s: span(self.merged_at, self.deployed_at),
            lead_time_s: span(started, self.deployed_at),
            size: self.additions + self.deletions,
            reviews: self
                .reviews
                .values()
                .filter(|review| review.counts && review.kind != "comment" && !review.dismissed)
                .count() as u64,
            rework_commits: match first_review {
                Some(first) => self.commits.values().filter(|commit| commit.at > first).count() as u64,
                None => 0,
            },
        }
    }

    /// Takes a commit of its branch, with its timeline point, unless it is
    /// known already or was authored after the merge.
    pub fn add_commit(&mut self, sha: &str, commit: Commit) {
        if self.merged_at.is_some_and(|merged| commit.at > merged) || self.commits.contains_key(sha) {
            return;
        }
        self.moment_about(commit.at, "commit", Some(sha), None, &commit.event_id);
        self.commits.insert(sha.to_owned(), commit);
    }

    /// Adds a timeline point once per (event, what, detail).
    pub fn moment(&mut self, at: Timestamp, what: &str, actor: Option<&str>, event_id: &str) {
        self.moment_about(at, what, None, actor, event_id);
    }

    pub fn moment_about(
        &mut self,
        at: Timestamp,
        what: &str,
        detail: Option<&str>,
        actor: Option<&str>,
        event_id: &str,
    ) {
        self.timeline.insert(
            format!("{event_id}/{what}/{}", detail.unwrap_or_default()),
            Moment {
                at,
                what: what.into(),
                actor: actor.map(str::to_owned),
                detail: detail.map(str::to_owned),
                event_id: event_id.into(),
            },
        );
    }

    /// Adds a timeline point unless one says the same `what` about the same
    /// `detail` already, whichever event it came from: a fact known from both a
    /// webhook and a backfill shows once.
    pub fn moment_once(
        &mut self,
        at: Timestamp,
        what: &str,
        detail: Option<&str>,
        actor: Option<&str>,
        event_id: &str,
    ) {
        let known = self.timeline.values().any(|moment| moment.what == what && moment.detail.as_deref() == detail);
        if !known {
            self.moment_about(at, what, detail, actor, event_id);
        }
    }

    /// The timeline in time order.
    pub fn timeline(&self) -> Vec<Moment> {
        let mut moments: Vec<Moment> = self.timeline.values().cloned().collect();
        moments.sort_by(|a, b| (a.at, &a.what, &a.event_id).cmp(&(b.at, &b.what, &b.event_id)));
        moments
    }
}

/// Bots: account type `Bot` or a login ending in `[bot]`.
pub fn is_bot(login: &str, kind: Option<&str>) -> bool {
    kind == Some("Bot") || login.ends_with("[bot]")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn review(by: &str, at: i64, counts: bool) -> Review {
        Review { by: by.into(), at, kind: "approved".into(), dismissed: false, counts, event_id: "e".into() }
    }

    #[test]
    fn the_cycle_splits_into_coding_pickup_and_review() {
        let mut pull =
            Pull { created_at: Some(2 * H), ready_at: Some(3 * H), merged_at: Some(10 * H), ..Pull::default() };
        pull.commits.insert("a".into(), Commit { at: H, event_id: "e".into() });
        pull.commits.insert("b".into(), Commit { at: 6 * H, event_id: "e".into() });
        pull.reviews.insert("bot".into(), review("ci[bot]", 4 * H, false));
        pull.reviews.insert("r1".into(), review("bea", 5 * H, true));
        let figures = pull.figures();
        assert_eq!(figures.cycle_time_s, Some(9.0 * 3600.0));
        assert_eq!(figures.coding_time_s, Some(2.0 * 3600.0));
        assert_eq!(figures.pickup_time_s, Some(2.0 * 3600.0));
        assert_eq!(figures.review_time_s, Some(5.0 * 3600.0));
        assert_eq!(figures.reviews, 1);
        assert_eq!(figures.rework_commits, 1);
        assert_eq!(figures.deploy_time_s, None);
    }

    #[test]
    fn bots_are_recognised_by_type_or_login() {
        assert!(is_bot("dependabot[bot]", Some("Bot")));
        assert!(is_bot("renovate[bot]", None));
        assert!(is_bot("ci", Some("Bot")));
        assert!(!is_bot("octocat", Some("User")));
    }
}
