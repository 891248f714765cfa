//! What operators read of the threads: a thread's state, and the figures behind 奖优惩劣 (section
//! 十七): per agency, requests received, answered on time, late, still open, and the median and
//! 90th-percentile reply times.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::AgencyId;
use crate::route::Router;
use crate::store::{ObligationRow, ReplyFigures, StoreError, ThreadRow, Threads};

/// The state of a thread at `now_ms`: `overdue` when a reply is owed past its deadline, `open`
/// when one is owed, `closed` when nothing is.
pub fn state(thread: &ThreadRow, now_ms: i64) -> &'static str {
    let owed: Vec<&ObligationRow> = thread.obligations.iter().filter(|o| o.state != "answered").collect();
    if owed.iter().any(|o| o.deadline_ms < now_ms) {
        "overdue"
    } else if owed.is_empty() {
        "closed"
    } else {
        "open"
    }
}

/// One agency's figures.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct AgencyStats {
    pub agency: String,
    pub level: String,
    /// Requests it was asked to answer.
    pub received: usize,
    pub answered_on_time: usize,
    pub answered_late: usize,
    /// Not answered yet, overdue or not.
    pub open: usize,
    /// Not answered, and past the deadline.
    pub overdue: usize,
    pub median_reply_seconds: Option<i64>,
    pub p90_reply_seconds: Option<i64>,
}

const DAY_MS: i64 = 24 * 3_600_000;
const BEIJING_MS: i64 = 8 * 3_600_000;

/// The Beijing day of a time (unix ms): days since 1970-01-01 in Beijing. The stores keep the
/// reply figures per day of the obligations' opening.
pub fn day(ms: i64) -> i64 {
    (ms + BEIJING_MS).div_euclid(DAY_MS)
}

/// The first instant (unix ms) of a Beijing day.
pub fn day_start(day: i64) -> i64 {
    day * DAY_MS - BEIJING_MS
}

/// A reply time in whole seconds (never below zero: the instances' clocks may differ by a
/// little). The stores' scripts and migrations compute the same.
pub fn reply_seconds(opened_ms: i64, answered_ms: i64) -> i64 {
    ((answered_ms - opened_ms) / 1000).max(0)
}

/// `f` with `times` (reply times in seconds, in any order) as its counted reply times.
pub fn with_times(mut f: ReplyFigures, mut times: Vec<i64>) -> ReplyFigures {
    times.sort_unstable();
    f.reply_times = Vec::new();
    for t in times {
        match f.reply_times.last_mut() {
            Some((last, n)) if *last == t => *n += 1,
            _ => f.reply_times.push((t, 1)),
        }
    }
    f
}

/// The reply figures of obligations read one by one (the part of a day at either end of a
/// period), in the form the stores keep per day.
pub fn tally<'a>(obligations: impl IntoIterator<Item = &'a ObligationRow>, now_ms: i64) -> Vec<ReplyFigures> {
    let mut by_agency: BTreeMap<&str, (ReplyFigures, BTreeMap<i64, u64>)> = BTreeMap::new();
    for o in obligations {
        let (f, times) = by_agency.entry(&o.awaiting).or_insert_with(|| {
            (ReplyFigures { agency: o.awaiting.clone(), ..ReplyFigures::default() }, BTreeMap::new())
        });
        f.received += 1;
        match o.answered_ms {
            Some(at) => {
                if o.late == Some(true) {
                    f.late += 1;
                } else {
                    f.on_time += 1;
                }
                *times.entry(reply_seconds(o.opened_ms, at)).or_default() += 1;
            }
            None if o.state == "overdue" || o.deadline_ms < now_ms => f.overdue += 1,
            None => {}
        }
    }
    by_agency
        .into_values()
        .map(|(mut f, times)| {
            f.reply_times = times.into_iter().collect();
            f
        })
        .collect()
}

/// Adds up the figures of each agency (parts of a period), by agency.
pub fn merge(parts: impl IntoIterator<Item = ReplyFigures>) -> Vec<ReplyFigures> {
    let mut by_agency: BTreeMap<String, (ReplyFigures, BTreeMap<i64, u64>)> = BTreeMap::new();
    for p in parts {
        let (f, times) = by_agency
            .entry(p.agency.clone())
            .or_insert_with(|| (ReplyFigures { agency: p.agency.clone(), ..ReplyFigures::default() }, BTreeMap::new()));
        f.received += p.received;
        f.on_time += p.on_time;
        f.late += p.late;
        f.overdue += p.overdue;
        for (b, n) in p.reply_times {
            *times.entry(b).or_default() += n;
        }
    }
    by_agency
        .into_values()
        .map(|(mut f, times)| {
            f.reply_times = times.into_iter().collect();
            f
        })
        .collect()
}

/// The figures of the obligations opened in `[from_ms, to_ms)` at `now_ms`, per agency: the
/// whole Beijing days from the figures the store keeps, a part of a day at either end from its
/// obligations.
pub async fn gather<T: Threads + ?Sized>(
    threads: &T,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Vec<ReplyFigures>, StoreError> {
    let first = if day_start(day(from_ms)) == from_ms { day(from_ms) } else { day(from_ms) + 1 };
    let end = day(to_ms);
    if first >= end {
        return Ok(tally(&threads.obligations(from_ms, to_ms).await?, now_ms));
    }
    let mut parts = threads.reply_figures(first, end, now_ms).await?;
    if from_ms < day_start(first) {
        parts.extend(tally(&threads.obligations(from_ms, day_start(first)).await?, now_ms));
    }
    if day_start(end) < to_ms {
        parts.extend(tally(&threads.obligations(day_start(end), to_ms).await?, now_ms));
    }
    Ok(merge(parts))
}

/// An agency's figures as operators read them.
fn stats(f: &ReplyFigures, level: String) -> AgencyStats {
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    AgencyStats {
        agency: f.agency.clone(),
        level,
        received: count(f.received),
        answered_on_time: count(f.on_time),
        answered_late: count(f.late),
        open: count(f.received.saturating_sub(f.on_time + f.late)),
        overdue: count(f.overdue),
        median_reply_seconds: percentile(&f.reply_times, 50),
        p90_reply_seconds: percentile(&f.reply_times, 90),
    }
}

/// The nearest-rank percentile of values given as ascending `(value, how many)`.
fn percentile(counted: &[(i64, u64)], p: u64) -> Option<i64> {
    let total: u64 = counted.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = (p * total).div_ceil(100).max(1);
    let mut seen = 0;
    counted
        .iter()
        .find(|(_, n)| {
            seen += n;
            seen >= rank
        })
        .map(|(v, _)| *v)
}

/// The figures of the agencies of `level` and `region` (when given). An unknown region matches
/// nobody (the caller checks it).
pub fn figures(
    figures: &[ReplyFigures],
    router: &Router,
    level: Option<&str>,
    region: Option<&str>,
) -> Vec<AgencyStats> {
    let level_of = |agency: &str| {
        agency
            .parse::<AgencyId>()
            .ok()
            .and_then(|a| router.divisions.get(&a.division))
            .map(|e| e.level.as_str().to_string())
            .unwrap_or_default()
    };
    let in_region = |agency: &str| {
        region.is_none_or(|r| {
            let division = agency.parse::<AgencyId>().ok().map(|a| a.division);
            router.regions.get(r).zip(division).is_some_and(|(region, d)| region.contains(&d))
        })
    };
    figures
        .iter()
        .map(|f| (f, level_of(&f.agency)))
        .filter(|(f, l)| level.is_none_or(|level| l == level) && in_region(&f.agency))
        .map(|(f, l)| stats(f, l))
        .collect()
}

/// The figures as CSV, one agency a line.
pub fn csv(rows: &[AgencyStats]) -> String {
    let mut out = String::from(
        "agency,level,received,answered_on_time,answered_late,open,overdue,median_reply_seconds,p90_reply_seconds\n",
    );
    for r in rows {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.agency,
            r.level,
            r.received,
            r.answered_on_time,
            r.answered_late,
            r.open,
            r.overdue,
            opt(r.median_reply_seconds),
            opt(r.p90_reply_seconds)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(awaiting: &str, opened: i64, deadline: i64, answered: Option<i64>) -> ObligationRow {
        ObligationRow {
            id: 0,
            thread: "t".into(),
            request_id: "r".into(),
            request_type: "x".into(),
            requester: "a".into(),
            awaiting: awaiting.into(),
            opened_ms: opened,
            deadline_ms: deadline,
            state: if answered.is_some() { "answered".into() } else { "open".into() },
            answered_by: None,
            answered_ms: answered,
            late: answered.map(|a| a > deadline),
            outcome: None,
        }
    }

    #[test]
    fn counts_on_time_late_open_and_overdue_with_percentiles() {
        let rows = [
            o("a", 0, 10_000, Some(1_000)),
            o("a", 0, 10_000, Some(2_000)),
            o("a", 0, 10_000, Some(30_000)),
            o("a", 0, 10_000, None),
            o("a", 0, 99_000, None),
            o("b", 0, 10_000, None),
        ];
        let tallied = tally(&rows, 50_000);
        let stats: Vec<AgencyStats> = tallied.iter().map(|f| stats(f, "county".into())).collect();
        let a = &stats[0];
        assert_eq!((a.received, a.answered_on_time, a.answered_late, a.open, a.overdue), (5, 2, 1, 2, 1));
        assert_eq!((a.median_reply_seconds, a.p90_reply_seconds), (Some(2), Some(30)));
        assert_eq!((stats[1].agency.as_str(), stats[1].overdue, stats[1].median_reply_seconds), ("b", 1, None));
    }

    #[test]
    fn merged_parts_give_the_figures_of_the_whole() {
        let rows: Vec<ObligationRow> =
            (0..50).map(|i| o(["a", "b", "c"][i % 3], 0, 40_000, (i % 4 != 0).then_some(i as i64 * 1_000))).collect();
        let whole = tally(&rows, 60_000);
        let parts = rows.chunks(7).flat_map(|c| tally(c, 60_000));
        assert_eq!(merge(parts), whole);
        assert_eq!(whole.iter().map(|f| f.received).sum::<u64>(), 50);
    }

    #[test]
    fn percentiles_by_nearest_rank_over_counted_values() {
        let v: Vec<(i64, u64)> = (1..=10).map(|v| (v, 1)).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[(7, 1)], 90), Some(7));
        assert_eq!(percentile(&[(1, 9), (100, 1)], 90), Some(1));
        assert_eq!(percentile(&[(1, 8), (100, 2)], 90), Some(100));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn reply_times_are_whole_seconds_never_negative() {
        assert_eq!(reply_seconds(1_000, 518_401_999), 518_400);
        assert_eq!(reply_seconds(5_000, 4_000), 0);
    }

    #[test]
    fn days_are_beijing_days() {
        let start = crate::clock::parse_time("2026-12-07").unwrap();
        assert_eq!(day_start(day(start)), start);
        assert_eq!(day(start - 1), day(start) - 1);
        assert_eq!(day(start + DAY_MS - 1), day(start));
    }
}
