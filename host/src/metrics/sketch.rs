//! DDSketch (Masson, Rim and Lee, VLDB 2019) reduced to its bins: a value maps
//! to a bin whose representative is within [`RELATIVE_ACCURACY`] of it, and a
//! sketch is a count per bin. Sketches merge by adding counts, which the
//! database does in the same upsert that maintains a rollup, so percentiles
//! over any span of rollups cost one grouped read and no raw point.
//!
//! Bins are stored as plain integers (rather than a serialised sketch from a
//! crate) precisely so that SQL can add them; the mapping is the paper's
//! logarithmic one.

use std::collections::BTreeMap;

/// Every percentile is within 1% of the true value at its rank.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Magnitudes below this count as zero.
const MIN_MAGNITUDE: f64 = 1e-9;

/// Keeps bin numbers of positive values positive and of negative values
/// negative, with zero in between, so bin order is value order.
const OFFSET: i32 = 1 << 20;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// The bin of `value`: bin `i` holds magnitudes in (γ^(i-1), γ^i].
pub fn bin(value: f64) -> i32 {
    let magnitude = value.abs();
    if magnitude < MIN_MAGNITUDE || !magnitude.is_finite() {
        return 0;
    }
    let index = (magnitude.ln() / gamma().ln()).ceil() as i32;
    if value > 0.0 { OFFSET + index } else { -(OFFSET + index) }
}

/// The representative of a bin: within the relative accuracy of every value in it.
pub fn representative(bin: i32) -> f64 {
    if bin == 0 {
        return 0.0;
    }
    let g = gamma();
    let magnitude = 2.0 * g.powi(bin.abs() - OFFSET) / (g + 1.0);
    if bin > 0 { magnitude } else { -magnitude }
}

/// Count, sum, min, max and bins of some points: what one output bucket of a
/// query accumulates from rollups (or raw points).
#[derive(Clone, Debug, PartialEq)]
pub struct Sketch {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    bins: BTreeMap<i32, u64>,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, bins: BTreeMap::new() }
    }
}

impl Sketch {
    /// Adds one point.
    pub fn add(&mut self, value: f64) {
        self.add_summary(1, value, value, value);
        self.add_bin(bin(value), 1);
    }

    /// Adds a rollup's count, sum, min and max (its bins come separately).
    pub fn add_summary(&mut self, count: u64, sum: f64, min: f64, max: f64) {
        self.count += count;
        self.sum += sum;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }

    pub fn add_bin(&mut self, bin: i32, count: u64) {
        *self.bins.entry(bin).or_default() += count;
    }

    /// Every bin and its count, in value order.
    pub fn bins(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.bins.iter().map(|(bin, count)| (*bin, *count))
    }

    /// The value at 0-based rank ⌊q·(n−1)⌋ of the sorted points, within the
    /// relative accuracy, clamped to the min and max (bounds are enough: clamping
    /// into any range holding every point only brings the estimate closer).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.bins.values().sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (total - 1) as f64).floor() as u64;
        let mut seen = 0;
        for (bin, count) in &self.bins {
            seen += count;
            if seen > rank {
                return Some(representative(*bin).clamp(self.min, self.max));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bins_representative_is_within_the_relative_accuracy() {
        for value in [1e-6, 0.5, 1.0, 3.7, 60.0, 3_600.0, 86_400.0 * 30.0, 1e12, -42.0, -0.001] {
            let estimate = representative(bin(value));
            assert!((estimate - value).abs() <= RELATIVE_ACCURACY * value.abs() + 1e-12, "{value} -> {estimate}");
        }
        assert_eq!(representative(bin(0.0)), 0.0);
    }

    #[test]
    fn bin_order_is_value_order() {
        let values = [-1e6, -3.0, -0.5, 0.0, 1e-3, 1.0, 1.5, 1e9];
        let bins: Vec<i32> = values.iter().map(|value| bin(*value)).collect();
        assert!(bins.windows(2).all(|pair| pair[0] < pair[1]), "{bins:?}");
    }

    #[test]
    fn quantiles_match_the_exact_rank_within_the_accuracy() {
        let mut sketch = Sketch::default();
        let values: Vec<f64> = (1..=1000).map(|i| (i * i) as f64 / 7.0).collect();
        for value in &values {
            sketch.add(*value);
        }
        for q in [0.0, 0.5, 0.9, 0.95, 1.0] {
            let exact = values[(q * 999.0_f64).floor() as usize];
            let estimate = sketch.quantile(q).unwrap();
            assert!((estimate - exact).abs() <= RELATIVE_ACCURACY * exact, "q{q}: {estimate} vs {exact}");
        }
        assert_eq!(sketch.quantile(0.0), Some(values[0]));
        assert_eq!(sketch.quantile(1.0), Some(values[999]));
    }

    #[test]
    fn merged_sketches_answer_as_one() {
        let (mut left, mut right, mut whole) = (Sketch::default(), Sketch::default(), Sketch::default());
        for i in 0..500 {
            let value = f64::from(i) * 1.3 + 2.0;
            if i % 3 == 0 {
                left.add(value)
            } else {
                right.add(value)
            }
            whole.add(value);
        }
        left.add_summary(right.count, right.sum, right.min, right.max);
        for (bin, count) in right.bins() {
            left.add_bin(bin, count);
        }
        assert_eq!(left.quantile(0.9), whole.quantile(0.9));
        assert_eq!(left.count, whole.count);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_lower_middle() {
        let mut sketch = Sketch::default();
        for value in [10.0, 20.0, 30.0, 40.0] {
            sketch.add(value);
        }
        let median = sketch.quantile(0.5).unwrap();
        assert!((median - 20.0).abs() <= 0.2, "{median}");
    }
}
