//! The org's rules (admins) and the overview of what holds now, per team and
//! per person, with the visibility of alerts: a person's own conditions go to
//! them and their managers, the rest to managers and above.

use crate::conditions::{Condition, Rule, all_open};
use crate::rules::{self, Rules, Stored};
use devpulse_sdk::prelude::*;
use std::collections::BTreeMap;

/// The rules in force.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct RulesView {
    pub rules: Rules,
    /// When they were last set; absent while the defaults apply.
    pub set_at: Option<Time>,
}

fn view(stored: Stored) -> RulesView {
    RulesView { set_at: (stored.set_at > 0).then_some(Time(stored.set_at)), rules: stored.rules }
}

pub fn get_rules(_call: Call) -> Result<RulesView> {
    Ok(view(rules::current()?))
}

/// Stores the rules and announces them; folding the announcement evaluates
/// every condition again under them.
pub fn put_rules(call: Call<(), Rules>) -> Result<RulesView> {
    let stored = Stored { rules: call.body, set_at: now() };
    rules::keep(&stored)?;
    events::emit(rules::UPDATED, &stored)?;
    Ok(view(stored))
}

/// Open conditions by rule, and how many in all.
#[derive(Serialize, Deserialize, JsonSchema, Default)]
pub struct Tally {
    pub total: u64,
    /// Open conditions by rule name, only rules with any.
    pub by_rule: BTreeMap<String, u64>,
    /// The most severe open condition: `info`, `warning` or `critical`; absent with none.
    pub worst: Option<crate::conditions::Level>,
}

impl Tally {
    fn add(&mut self, condition: &Condition) {
        self.total += 1;
        *self.by_rule.entry(condition.rule.name()).or_default() += 1;
        let rank = |level: crate::conditions::Level| level as u8;
        if self.worst.is_none_or(|worst| rank(condition.level) > rank(worst)) {
            self.worst = Some(condition.level);
        }
    }
}

/// One person's open conditions.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Person {
    pub user: String,
    #[serde(flatten)]
    pub tally: Tally,
}

/// What holds now, for a dashboard.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Overview {
    /// The org as one team: every open condition the caller may see.
    pub team: Tally,
    /// Per person, for conditions about a person, by user id.
    pub people: Vec<Person>,
    /// Every rule, so a dashboard can show the quiet ones too.
    pub rules: Vec<Rule>,
}

pub fn overview(call: Call) -> Result<Overview> {
    let caller = &call.principal;
    let manager = caller.role != Role::Developer;
    let mut team = Tally::default();
    let mut people: BTreeMap<String, Tally> = BTreeMap::new();
    for condition in all_open()? {
        let own = condition.user.as_deref() == Some(caller.user_id.as_str());
        if !manager && !own {
            continue;
        }
        team.add(&condition);
        if let Some(user) = &condition.user {
            people.entry(user.clone()).or_default().add(&condition);
        }
    }
    Ok(Overview {
        team,
        people: people.into_iter().map(|(user, tally)| Person { user, tally }).collect(),
        rules: ALL_RULES.to_vec(),
    })
}

const ALL_RULES: &[Rule] = &[
    Rule::ReviewWaiting,
    Rule::StalePull,
    Rule::LargePull,
    Rule::ReviewLoad,
    Rule::FailedDeployment,
    Rule::ChangeFailureRate,
    Rule::DeliveryReliability,
    Rule::Overwork,
    Rule::MissingBreaks,
    Rule::ConsecutiveDays,
    Rule::Inactivity,
    Rule::PluginDown,
    Rule::DeliveryLag,
    Rule::DeadLetters,
    Rule::BadSignatures,
    Rule::WorkspaceFailed,
];
