//! 奖优惩劣 (section 十七): an evaluation notice rests on the evaluated agency's reply-timeliness
//! figures for a period. The gateway computes them from its own threads when it accepts the
//! notice and adds them as `data.evaluation.figures`, so that the agency and its superior read
//! the verdict with the record it rests on; a sender cannot supply figures of its own.

use serde_json::{Value, json};

use crate::clock::{format_ms, parse_time};
use crate::model::{Code, Detail, Problem};
use crate::route::Router;
use crate::store::Threads;
use crate::threads::stats;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The evaluated agency and the period (unix ms, the end exclusive) an evaluation notice names;
/// refused when the period ends before it starts or the sender wrote figures itself.
pub fn period(event: &Value) -> Result<(String, i64, i64), Problem> {
    let refuse = |pointer: &str, reason: &str| {
        Problem::new(Code::SchemaViolation, "the evaluation notice cannot be accepted as written")
            .with_details(vec![Detail::new(pointer, reason)])
    };
    if event.pointer("/data/evaluation/figures").is_some() {
        return Err(refuse(
            "/data/evaluation/figures",
            "the figures are computed by the gateway from its threads; leave them out",
        ));
    }
    let text = |p: &str| event.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    let agency = text("/data/evaluation/agency");
    let day = |p: &str| parse_time(&text(p)).map_err(|e| refuse(p, &e));
    let from = day("/data/evaluation/period/from")?;
    let to = day("/data/evaluation/period/to")? + DAY_MS;
    if to <= from {
        return Err(refuse("/data/evaluation/period/to", "the period ends before it starts"));
    }
    Ok((agency, from, to))
}

/// Adds the evaluated agency's figures for the period to `event` (see the module).
pub async fn attach_figures(
    event: &mut Value,
    threads: &dyn Threads,
    router: &Router,
    now_ms: i64,
) -> Result<(), Problem> {
    let (agency, from, to) = period(event)?;
    let parts = stats::gather(threads, from, to, now_ms).await.map_err(|e| {
        Problem::new(
            Code::StoreUnavailable,
            format!("the evaluated agency's figures cannot be read now ({e}); retry shortly"),
        )
    })?;
    let rows = stats::figures(&parts, router, None, None);
    let row = rows.into_iter().find(|r| r.agency == agency).unwrap_or_default();
    let figures = json!({
        "source": "gateway", "agency": agency, "from": format_ms(from), "to": format_ms(to),
        "received": row.received, "answeredOnTime": row.answered_on_time, "answeredLate": row.answered_late,
        "open": row.open, "overdue": row.overdue,
        "medianReplySeconds": row.median_reply_seconds, "p90ReplySeconds": row.p90_reply_seconds,
    });
    if let Some(evaluation) = event.pointer_mut("/data/evaluation").and_then(Value::as_object_mut) {
        evaluation.insert("figures".into(), figures);
    }
    Ok(())
}
