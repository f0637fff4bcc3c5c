//! Per repository: its recent merges and production deployments, and the links
//! between them. A deployment contains every pull request merged into the
//! default branch at or before the deployed commit (the merge commit's time when
//! the deployed SHA is a known merge, the deployment's creation otherwise); a
//! pull request's deployment is the earliest successful one containing it.
//! Both lists keep 120 days before the newest entry, which bounds the document.

use devpulse_sdk::prelude::*;
use std::collections::BTreeMap;

const HORIZON_MS: i64 = 120 * 86_400_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Merge {
    pub merged_at: Timestamp,
    pub merge_sha: Option<String>,
    pub deployed_at: Option<Timestamp>,
    pub deployment: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Deploy {
    pub id: String,
    pub environment: String,
    pub sha: Option<String>,
    pub created_at: Timestamp,
    /// `success` or `failure`, from the latest final status; `None` while pending.
    pub outcome: Option<String>,
    /// When the outcome was reported.
    pub at: Timestamp,
    /// Events this deployment was read from.
    pub event_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RepoState {
    pub merges: BTreeMap<u64, Merge>,
    pub deploys: BTreeMap<String, Deploy>,
}

pub fn key(repo: &str) -> String {
    format!("repo/{repo}")
}

impl RepoState {
    /// Recomputes every merge's deployment; returns the pull numbers that changed.
    pub fn link(&mut self) -> Vec<u64> {
        let commit_time: BTreeMap<&str, Timestamp> =
            self.merges.values().filter_map(|merge| Some((merge.merge_sha.as_deref()?, merge.merged_at))).collect();
        let mut successes: Vec<(Timestamp, Timestamp, String)> = self
            .deploys
            .values()
            .filter(|deploy| deploy.outcome.as_deref() == Some("success"))
            .map(|deploy| {
                let contains_until =
                    deploy.sha.as_deref().and_then(|sha| commit_time.get(sha).copied()).unwrap_or(deploy.created_at);
                (deploy.at, contains_until, deploy.id.clone())
            })
            .collect();
        successes.sort();
        let mut changed = Vec::new();
        for (number, merge) in &mut self.merges {
            let first = successes.iter().find(|(_, until, _)| *until >= merge.merged_at);
            let linked = first.map(|(at, _, id)| (*at, id.clone()));
            if linked != merge.deployed_at.zip(merge.deployment.clone()) {
                merge.deployed_at = linked.as_ref().map(|(at, _)| *at);
                merge.deployment = linked.map(|(_, id)| id);
                changed.push(*number);
            }
        }
        changed
    }

    /// Each failed deployment and the time to the next successful one in the
    /// same environment (`None` while not recovered).
    pub fn recoveries(&self) -> Vec<(&Deploy, Option<Timestamp>)> {
        self.deploys
            .values()
            .filter(|deploy| deploy.outcome.as_deref() == Some("failure"))
            .map(|failure| {
                let next = self
                    .deploys
                    .values()
                    .filter(|deploy| {
                        deploy.environment == failure.environment
                            && deploy.outcome.as_deref() == Some("success")
                            && deploy.at > failure.at
                    })
                    .map(|deploy| deploy.at)
                    .min();
                (failure, next.map(|at| at - failure.at))
            })
            .collect()
    }

    /// Drops entries older than the horizon before the newest one.
    pub fn trim(&mut self) {
        let newest = self
            .merges
            .values()
            .map(|merge| merge.merged_at)
            .chain(self.deploys.values().map(|deploy| deploy.at))
            .max()
            .unwrap_or(0);
        let cutoff = newest - HORIZON_MS;
        self.merges.retain(|_, merge| merge.merged_at >= cutoff);
        self.deploys.retain(|_, deploy| deploy.at >= cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(id: &str, at: Timestamp, sha: Option<&str>, outcome: &str) -> Deploy {
        Deploy {
            id: id.into(),
            environment: "production".into(),
            sha: sha.map(str::to_owned),
            created_at: at,
            outcome: Some(outcome.into()),
            at,
            event_ids: vec![],
        }
    }

    #[test]
    fn a_merge_goes_out_with_the_first_success_containing_it() {
        let mut repo = RepoState::default();
        repo.merges.insert(1, Merge { merged_at: 100, merge_sha: Some("m1".into()), ..Merge::default() });
        repo.merges.insert(2, Merge { merged_at: 200, merge_sha: Some("m2".into()), ..Merge::default() });
        // Deploys m1 only (its commit time is m1's merge), then fails, then deploys everything.
        repo.deploys.insert("a".into(), deploy("a", 250, Some("m1"), "success"));
        repo.deploys.insert("b".into(), deploy("b", 300, None, "failure"));
        repo.deploys.insert("c".into(), deploy("c", 400, None, "success"));
        let mut changed = repo.link();
        changed.sort();
        assert_eq!(changed, vec![1, 2]);
        assert_eq!(repo.merges[&1].deployed_at, Some(250));
        assert_eq!(repo.merges[&2].deployed_at, Some(400));
        assert!(repo.link().is_empty(), "linking again changes nothing");
        let recoveries = repo.recoveries();
        assert_eq!(recoveries.len(), 1);
        assert_eq!(recoveries[0].1, Some(100));
    }
}
