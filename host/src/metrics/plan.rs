//! Which stored rows answer which part of a query. Each output bucket is
//! covered by the coarsest rollup buckets that fit inside it, finer ones towards
//! its edges, and raw points for what is left (less than an hour at either
//! end): a year is a dozen monthly rows per series, a rolling 30 days about 30
//! daily ones, and no point is counted twice or missed.

use super::rollup::Level;

/// The largest number of spans one source is filtered by exactly in SQL;
/// beyond it (zones with half-hour offsets and many buckets) the database
/// returns the source's whole extent and [`Plan::covers`] sorts rows out.
const MAX_SQL_SPANS: usize = 32;

/// A stretch of time read from one source: a rollup level, or raw points (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub level: Option<Level>,
    pub from: i64,
    pub to: i64,
}

/// The spans covering a query's output buckets, neighbours from the same
/// source merged, ordered by source and then time.
#[derive(Debug)]
pub struct Plan {
    spans: Vec<Span>,
}

impl Plan {
    /// Covers the output buckets between consecutive `edges`.
    pub fn cover(edges: &[i64]) -> Plan {
        let mut spans: Vec<Span> = Vec::new();
        for bucket in edges.windows(2) {
            cover_bucket(bucket[0], bucket[1], &[Level::Month, Level::Day, Level::Hour], &mut spans);
        }
        spans.sort_by_key(|span| (span.level, span.from));
        Plan { spans }
    }

    /// The spans read from `source`, in time order.
    pub fn spans(&self, source: Option<Level>) -> &[Span] {
        let start = self.spans.partition_point(|span| span.level < source);
        let end = self.spans.partition_point(|span| span.level <= source);
        &self.spans[start..end]
    }

    /// The ranges to filter `source` by in SQL: each span, or when there are
    /// too many, one range from the first to the last.
    pub fn sql_ranges(&self, source: Option<Level>) -> Vec<(i64, i64)> {
        let spans = self.spans(source);
        match (spans.first(), spans.last()) {
            (Some(first), Some(last)) if spans.len() > MAX_SQL_SPANS => vec![(first.from, last.to)],
            _ => spans.iter().map(|span| (span.from, span.to)).collect(),
        }
    }

    /// True when `source` answers for `time` (a rollup bucket's start, or a
    /// raw point's time).
    pub fn covers(&self, source: Option<Level>, time: i64) -> bool {
        let spans = self.spans(source);
        let after = spans.partition_point(|span| span.from <= time);
        after > 0 && time < spans[after - 1].to
    }
}

/// Covers `[from, to)` with buckets of `levels` (coarsest first), then raw points.
fn cover_bucket(from: i64, to: i64, levels: &[Level], spans: &mut Vec<Span>) {
    if from >= to {
        return;
    }
    let Some((&level, finer)) = levels.split_first() else {
        return push(spans, Span { level: None, from, to });
    };
    let start = level.bucket(from);
    let first = if start == from { from } else { level.next(start) };
    let last = level.bucket(to);
    if first >= last {
        return cover_bucket(from, to, finer, spans);
    }
    cover_bucket(from, first, finer, spans);
    push(spans, Span { level: Some(level), from: first, to: last });
    cover_bucket(last, to, finer, spans);
}

/// Appends `span`, merged into the last one when it continues it (spans
/// arrive in time order).
fn push(spans: &mut Vec<Span>, span: Span) {
    match spans.last_mut() {
        Some(last) if last.level == span.level && last.to == span.from => last.to = span.to,
        _ => spans.push(span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    /// The plan's spans in time order.
    fn in_time_order(plan: &Plan) -> Vec<Span> {
        let mut spans = plan.spans.clone();
        spans.sort_by_key(|span| span.from);
        spans
    }

    fn span(level: Option<Level>, from: &str, to: &str) -> Span {
        Span { level, from: ms(from), to: ms(to) }
    }

    #[test]
    fn a_calendar_year_is_twelve_months() {
        let plan = Plan::cover(&[ms("2026-01-01T00:00:00Z"), ms("2027-01-01T00:00:00Z")]);
        assert_eq!(
            in_time_order(&plan),
            vec![span(Some(Level::Month), "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")]
        );
    }

    #[test]
    fn a_rolling_window_uses_finer_buckets_towards_its_edges() {
        let plan = Plan::cover(&[ms("2026-10-30T10:20:00Z"), ms("2026-12-02T23:45:00Z")]);
        assert_eq!(
            in_time_order(&plan),
            vec![
                span(None, "2026-10-30T10:20:00Z", "2026-10-30T11:00:00Z"),
                span(Some(Level::Hour), "2026-10-30T11:00:00Z", "2026-10-31T00:00:00Z"),
                span(Some(Level::Day), "2026-10-31T00:00:00Z", "2026-11-01T00:00:00Z"),
                span(Some(Level::Month), "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
                span(Some(Level::Day), "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"),
                span(Some(Level::Hour), "2026-12-02T00:00:00Z", "2026-12-02T23:00:00Z"),
                span(None, "2026-12-02T23:00:00Z", "2026-12-02T23:45:00Z"),
            ]
        );
    }

    #[test]
    fn neighbouring_buckets_share_spans() {
        // Weekly buckets in UTC: one run of days.
        let edges = [ms("2026-11-02T00:00:00Z"), ms("2026-11-09T00:00:00Z"), ms("2026-11-16T00:00:00Z")];
        let plan = Plan::cover(&edges);
        assert_eq!(in_time_order(&plan), vec![span(Some(Level::Day), "2026-11-02T00:00:00Z", "2026-11-16T00:00:00Z")]);
    }

    #[test]
    fn half_hour_zones_read_raw_points_around_each_edge() {
        // Days in Asia/Kolkata start at 18:30 UTC.
        let edges = [ms("2026-11-01T18:30:00Z"), ms("2026-11-02T18:30:00Z"), ms("2026-11-03T18:30:00Z")];
        let plan = Plan::cover(&edges);
        assert_eq!(
            in_time_order(&plan),
            vec![
                span(None, "2026-11-01T18:30:00Z", "2026-11-01T19:00:00Z"),
                span(Some(Level::Hour), "2026-11-01T19:00:00Z", "2026-11-02T18:00:00Z"),
                span(None, "2026-11-02T18:00:00Z", "2026-11-02T19:00:00Z"),
                span(Some(Level::Hour), "2026-11-02T19:00:00Z", "2026-11-03T18:00:00Z"),
                span(None, "2026-11-03T18:00:00Z", "2026-11-03T18:30:00Z"),
            ]
        );
        assert!(plan.covers(None, ms("2026-11-02T18:45:00Z")));
        assert!(!plan.covers(None, ms("2026-11-02T17:45:00Z")));
        assert!(plan.covers(Some(Level::Hour), ms("2026-11-02T17:00:00Z")));
        assert!(!plan.covers(Some(Level::Hour), ms("2026-11-02T18:00:00Z")));
    }

    #[test]
    fn many_spans_are_filtered_in_sql_by_their_extent() {
        let day = 86_400_000;
        let from = ms("2026-01-01T18:30:00Z");
        let edges: Vec<i64> = (0..100).map(|index| from + index * day).collect();
        let plan = Plan::cover(&edges);
        assert_eq!(plan.sql_ranges(None), vec![(from, from + 99 * day)]);
        assert_eq!(plan.sql_ranges(Some(Level::Month)), vec![]);
    }

    #[test]
    fn months_follow_the_calendar() {
        let february = ms("2028-02-01T00:00:00Z");
        assert_eq!(Level::Month.bucket(ms("2028-02-29T23:59:59Z")), february);
        assert_eq!(Level::Month.next(february), ms("2028-03-01T00:00:00Z"));
        assert_eq!(Level::Month.next(ms("2026-12-01T00:00:00Z")), ms("2027-01-01T00:00:00Z"));
    }
}
