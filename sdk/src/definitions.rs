//! DevPulse's published definitions that more than one plugin computes, in
//! one place so every figure of the same name agrees (`docs/metrics.md`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the Delivery Reliability Score is made of; unknown inputs are `None`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, PartialEq, Debug)]
pub struct ReliabilityInputs {
    pub review_coverage: Option<f64>,
    pub rework_rate: Option<f64>,
    /// Over the same window and repository (all authors: failures belong to deployments).
    pub change_failure_rate: Option<f64>,
    pub cycle_time_p50_s: Option<f64>,
}

/// The published formula, as the API shows it beside a score.
pub const RELIABILITY_FORMULA: &str = "score = 100 × (0.35·review_coverage + 0.25·(1 − rework_rate) + 0.25·(1 − change_failure_rate) \
     + 0.15·flow), flow = max(0, 1 − cycle_time_p50_s / 604800); inputs that are unknown are left out and the \
     remaining weights scaled to add up to 1";

const WEEK_S: f64 = 7.0 * 86_400.0;

impl ReliabilityInputs {
    /// The score, 0 to 100 with one decimal; `None` when no input is known.
    pub fn score(&self) -> Option<f64> {
        let flow = self.cycle_time_p50_s.map(|cycle| (1.0 - cycle / WEEK_S).max(0.0));
        let parts = [
            (0.35, self.review_coverage),
            (0.25, self.rework_rate.map(|rate| 1.0 - rate)),
            (0.25, self.change_failure_rate.map(|rate| 1.0 - rate)),
            (0.15, flow),
        ];
        let weight: f64 = parts.iter().filter(|(_, value)| value.is_some()).map(|(weight, _)| weight).sum();
        if weight == 0.0 {
            return None;
        }
        let total: f64 = parts.iter().filter_map(|(weight, value)| Some(weight * (*value)?)).sum();
        Some((1000.0 * total / weight).round() / 10.0)
    }
}
