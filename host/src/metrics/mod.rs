//! The metrics store: plugins record points (committed with their call) and
//! query them; rollups maintained on write (by hour, day and month, per series
//! and per projection) answer queries without scanning points, and percentiles
//! come from mergeable sketches (see `docs/metrics.md`).

pub mod plan;
pub mod query;
pub mod rollup;
pub mod series;
pub mod sketch;
