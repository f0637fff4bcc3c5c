//! The metrics store: plugins record points (committed with their call) and
//! query them; rollups maintained on write serve every day-or-coarser query, and
//! percentiles come from mergeable sketches (see `docs/metrics.md`).

pub mod query;
pub mod rollup;
pub mod series;
pub mod sketch;
