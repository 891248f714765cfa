//! The reply figures the replies page reads (per agency and Beijing day of the obligations'
//! opening), kept in the thread worker's transactions as obligations open, fall overdue and are
//! answered.

use std::collections::BTreeMap;

use rusqlite::{Connection, Savepoint, params};

use crate::store::{ObligationRow, ReplyFigures};
use crate::threads::stats::{day, day_start, reply_seconds, with_times};

/// A column of `reply_figures`.
#[derive(Clone, Copy)]
pub enum Figure {
    Received,
    OnTime,
    Late,
    Overdue,
}

impl Figure {
    fn column(self) -> &'static str {
        match self {
            Figure::Received => "received",
            Figure::OnTime => "on_time",
            Figure::Late => "late",
            Figure::Overdue => "overdue",
        }
    }
}

/// Adds `by` to an agency's figure on the day of `opened_ms`.
pub fn count(tx: &Savepoint<'_>, agency: &str, opened_ms: i64, figure: Figure, by: i64) -> rusqlite::Result<()> {
    let c = figure.column();
    tx.prepare_cached(&format!(
        "INSERT INTO reply_figures (day, agency, {c}) VALUES (?1, ?2, ?3)
         ON CONFLICT (day, agency) DO UPDATE SET {c} = {c} + excluded.{c}"
    ))?
    .execute(params![day(opened_ms), agency, by])?;
    Ok(())
}

/// Counts an answer to `o` (its state before the answer) given at `answered_ms`.
pub fn answered(tx: &Savepoint<'_>, o: &ObligationRow, answered_ms: i64, late: bool) -> rusqlite::Result<()> {
    let c = if late { Figure::Late } else { Figure::OnTime }.column();
    let overdue = i64::from(o.state == "overdue");
    tx.prepare_cached(&format!(
        "INSERT INTO reply_figures (day, agency, {c}, overdue, times) VALUES (?1, ?2, 1, -?3, ?4)
         ON CONFLICT (day, agency) DO UPDATE SET {c} = {c} + 1, overdue = overdue - ?3,
             times = CASE times WHEN '' THEN excluded.times ELSE times || ' ' || excluded.times END"
    ))?
    .execute(params![
        day(o.opened_ms),
        o.awaiting,
        overdue,
        reply_seconds(o.opened_ms, answered_ms).to_string()
    ])?;
    Ok(())
}

/// The figures of the days `[first, end)` at `now_ms`, by agency.
pub fn read(c: &Connection, first: i64, end: i64, now_ms: i64) -> rusqlite::Result<Vec<ReplyFigures>> {
    let mut by_agency: BTreeMap<String, (ReplyFigures, Vec<i64>)> = BTreeMap::new();
    let mut rows = c.prepare_cached(
        "SELECT agency, received, on_time, late, overdue, times FROM reply_figures WHERE day >= ?1 AND day < ?2",
    )?;
    let mut rows = rows.query(params![first, end])?;
    while let Some(r) = rows.next()? {
        let agency = r.get_ref(0)?.as_str()?;
        let (f, times) = match by_agency.get_mut(agency) {
            Some(entry) => entry,
            None => by_agency.entry(agency.to_string()).or_insert_with(|| {
                (ReplyFigures { agency: agency.to_string(), ..ReplyFigures::default() }, Vec::new())
            }),
        };
        let n = |i| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
        f.received += n(1)?;
        f.on_time += n(2)?;
        f.late += n(3)?;
        f.overdue += n(4)?;
        times.extend(r.get_ref(5)?.as_str()?.split_ascii_whitespace().filter_map(|s| s.parse::<i64>().ok()));
    }
    // Deadlines passed since the thread worker's last round: not marked overdue yet.
    let mut unmarked = c.prepare_cached(
        "SELECT awaiting, count(*) FROM obligations WHERE state = 'open' AND deadline_ms < ?3
           AND opened_ms >= ?1 AND opened_ms < ?2 GROUP BY awaiting",
    )?;
    let mut unmarked = unmarked.query(params![day_start(first), day_start(end), now_ms])?;
    while let Some(r) = unmarked.next()? {
        if let Some((f, _)) = by_agency.get_mut(r.get_ref(0)?.as_str()?) {
            f.overdue += u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0);
        }
    }
    Ok(by_agency.into_values().map(|(f, times)| with_times(f, times)).collect())
}
