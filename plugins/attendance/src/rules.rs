//! Working-time rules per org and the days that break them. Rules are read
//! when figures are read, so a change applies to every day at once.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The org's working-time rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Most worked time in a day, in hours (default 10); absent: no limit.
    #[schemars(range(min = 0.0, max = 24.0))]
    pub max_daily_hours: Option<f64>,
    /// Breaks required by worked time (default 30 minutes after 6 hours, 45 after 9).
    #[schemars(length(max = 8))]
    pub min_breaks: Vec<BreakRule>,
    /// Most consecutive days with worked time (default 6); absent: no limit.
    #[schemars(range(min = 1, max = 366))]
    pub max_consecutive_days: Option<u32>,
}

/// After `after_hours` of work in a day, breaks of at least `minutes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakRule {
    #[schemars(range(min = 0.0, max = 24.0))]
    pub after_hours: f64,
    #[schemars(range(min = 0.0, max = 1440.0))]
    pub minutes: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_daily_hours: Some(10.0),
            min_breaks: vec![
                BreakRule { after_hours: 6.0, minutes: 30.0 },
                BreakRule { after_hours: 9.0, minutes: 45.0 },
            ],
            max_consecutive_days: Some(6),
        }
    }
}

/// A rule a day breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Breach {
    MaxDailyHours,
    MinBreaks,
    MaxConsecutiveDays,
}

impl Rules {
    /// What a day of `worked_s` with `breaks_s` of breaks breaks, given how
    /// many consecutive worked days end with it.
    pub fn breaches(&self, worked_s: f64, breaks_s: f64, consecutive_days: u32) -> Vec<Breach> {
        let worked_h = worked_s / 3600.0;
        let mut breaches = Vec::new();
        if self.max_daily_hours.is_some_and(|max| worked_h > max) {
            breaches.push(Breach::MaxDailyHours);
        }
        let required = self
            .min_breaks
            .iter()
            .filter(|rule| worked_h > rule.after_hours)
            .map(|rule| rule.minutes * 60.0)
            .fold(0.0, f64::max);
        if breaks_s < required {
            breaches.push(Breach::MinBreaks);
        }
        if self.max_consecutive_days.is_some_and(|max| consecutive_days > max) {
            breaches.push(Breach::MaxConsecutiveDays);
        }
        breaches
    }
}

/// For each date, how many consecutive dates with worked time end with it
/// (0 for a day without), given `worked` in date order.
pub fn streaks(worked: &[(NaiveDate, bool)]) -> Vec<u32> {
    let mut streaks = Vec::with_capacity(worked.len());
    let mut previous: Option<(NaiveDate, u32)> = None;
    for &(date, did_work) in worked {
        let streak = match (did_work, previous) {
            (false, _) => 0,
            (true, Some((before, run))) if before.succ_opt() == Some(date) => run + 1,
            (true, _) => 1,
        };
        streaks.push(streak);
        previous = Some((date, streak));
    }
    streaks
}
