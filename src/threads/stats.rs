//! What operators read of the threads: a thread's state, and the figures behind 奖优惩劣 (section
//! 十七): per agency, requests received, answered on time, late, still open, and the median and
//! 90th-percentile reply times.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::AgencyId;
use crate::route::Router;
use crate::store::{ObligationRow, ThreadRow};

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

/// The figures of `obligations` at `now_ms`, per agency that owed a reply.
pub fn compute<'a>(
    obligations: impl IntoIterator<Item = &'a ObligationRow>,
    now_ms: i64,
    level_of: impl Fn(&str) -> String,
) -> Vec<AgencyStats> {
    let mut by_agency: BTreeMap<&str, (AgencyStats, Vec<i64>)> = BTreeMap::new();
    for o in obligations {
        let (s, times) = by_agency.entry(&o.awaiting).or_insert_with(|| {
            (
                AgencyStats { agency: o.awaiting.clone(), level: level_of(&o.awaiting), ..AgencyStats::default() },
                Vec::new(),
            )
        });
        s.received += 1;
        match (o.answered_ms, o.late) {
            (Some(at), late) => {
                if late == Some(true) {
                    s.answered_late += 1;
                } else {
                    s.answered_on_time += 1;
                }
                times.push((at - o.opened_ms) / 1000);
            }
            (None, _) => {
                s.open += 1;
                if o.deadline_ms < now_ms {
                    s.overdue += 1;
                }
            }
        }
    }
    by_agency
        .into_values()
        .map(|(mut s, mut times)| {
            times.sort_unstable();
            s.median_reply_seconds = percentile(&times, 50);
            s.p90_reply_seconds = percentile(&times, 90);
            s
        })
        .collect()
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The figures of the obligations owed by agencies of `level` and `region` (when given), at
/// `now_ms`. An unknown region matches nobody (the caller checks it).
pub fn figures(
    obligations: &[ObligationRow],
    now_ms: i64,
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
    // Whether an agency is kept is decided once per agency, not once per obligation.
    let mut kept: std::collections::HashMap<&str, bool> = std::collections::HashMap::new();
    let wanted = |agency: &str| {
        level.is_none_or(|l| level_of(agency) == l)
            && region.is_none_or(|r| {
                let division = agency.parse::<AgencyId>().ok().map(|a| a.division);
                router.regions.get(r).zip(division).is_some_and(|(region, d)| region.contains(&d))
            })
    };
    let obligations =
        obligations.iter().filter(|o| *kept.entry(o.awaiting.as_str()).or_insert_with(|| wanted(&o.awaiting)));
    compute(obligations, now_ms, level_of)
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
        let stats = compute(&rows, 50_000, |_| "county".into());
        let a = &stats[0];
        assert_eq!((a.received, a.answered_on_time, a.answered_late, a.open, a.overdue), (5, 2, 1, 2, 1));
        assert_eq!((a.median_reply_seconds, a.p90_reply_seconds), (Some(2), Some(30)));
        assert_eq!((stats[1].agency.as_str(), stats[1].overdue, stats[1].median_reply_seconds), ("b", 1, None));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
