//! The thread decisions, the same for every store: which thread a message joins, which owed
//! obligation a reply answers, whether it was late, whether a 无法认定 escalates, and why a reply
//! is flagged. Pure functions of what the store fetched; the stores only fetch the candidates
//! and write what is decided here.

use crate::store::{Escalation, ObligationRow, StepRole, ThreadStep};

/// Where a message goes among the threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Into the thread of the message it refers to.
    Join(String),
    /// The message it refers to stood alone: that message becomes the root of a thread (its
    /// id is the thread's id), which this one joins.
    RootAt(String),
    /// Progress on a case that refers to nothing: into the case's latest thread, or a thread
    /// of its own when the case has none.
    LatestOfCase(String),
    /// A thread of its own (its id is the thread's id): a request, a reply or progress that
    /// refers to no known message.
    Open,
    /// A message that neither asks, answers, reports progress nor refers to anything stands
    /// alone: no thread.
    Alone,
}

/// Where `step` goes. `target` is the message its link names, if the store knows it (see
/// [`crate::store::Messages::sender_of`] for which one a link names), with that message's thread.
pub fn place(step: &ThreadStep, target: Option<(&str, Option<&str>)>) -> Placement {
    match (target, &step.role, &step.subject) {
        (Some((_, Some(thread))), _, _) => Placement::Join(thread.to_string()),
        (Some((message, None)), _, _) => Placement::RootAt(message.to_string()),
        (None, StepRole::Progress, Some(case)) => Placement::LatestOfCase(case.clone()),
        (None, StepRole::Other, _) => Placement::Alone,
        (None, _, _) => Placement::Open,
    }
}

/// What a message is in its thread: `request`, `reply`, `progress`, `notice` (the gateway's
/// own) or `message`.
pub fn kind(step: &ThreadStep) -> &'static str {
    match &step.role {
        StepRole::Request { .. } => "request",
        StepRole::Reply { .. } => "reply",
        StepRole::Progress => "progress",
        StepRole::Other if step.sender == "gateway" => "notice",
        StepRole::Other => "message",
    }
}

/// What a reply does to the obligation it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub obligation: i64,
    /// Answered after the deadline.
    pub late: bool,
    /// `answered`, or `cannot_determine` (无法认定).
    pub outcome: &'static str,
    /// A 无法认定 on a request whose type escalates: the request goes on up.
    pub escalate: Option<Escalation>,
}

/// The obligation a reply answers among `candidates` (the obligations of its thread; any
/// order), or why the reply is flagged. `target` is the id of the message the reply names.
///
/// A reply answers an obligation that is owed by its sender, not answered yet, and of a request
/// type the reply answers. Of several, the tie-break is: the request the reply names first,
/// then the oldest (opened first), then the one opened first by the store (the lowest id).
pub fn answer(step: &ThreadStep, target: Option<&str>, candidates: &[ObligationRow]) -> Result<Answer, String> {
    let StepRole::Reply { answers, cannot_determine, escalates } = &step.role else {
        return Err("not a reply".into());
    };
    let owed = candidates
        .iter()
        .filter(|o| o.awaiting == step.sender && o.state != "answered" && answers.contains(&o.request_type))
        .min_by_key(|o| (Some(o.request_id.as_str()) != target, o.opened_ms, o.id));
    let Some(o) = owed else {
        return Err(match (&step.link, target) {
            (None, _) => "a reply that names no message it answers",
            (Some(_), None) => "a reply to a message the gateway does not know",
            (Some(_), Some(_)) => "a reply to a request that is already answered, or that did not ask the sender",
        }
        .to_string());
    };
    let escalate = (*cannot_determine && escalates.contains(&o.request_type)).then(|| Escalation {
        obligation: o.id,
        request_id: o.request_id.clone(),
        replier: step.sender.clone(),
    });
    Ok(Answer {
        obligation: o.id,
        late: step.at_ms > o.deadline_ms,
        outcome: if *cannot_determine { "cannot_determine" } else { "answered" },
        escalate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(link: Option<&str>, cannot_determine: bool) -> ThreadStep {
        ThreadStep {
            seq: 9,
            message_id: "r".into(),
            message_type: "cn.xietong.opinion.reply".into(),
            sender: "ip_office:330100".into(),
            subject: Some("case".into()),
            at_ms: 1_000,
            link: link.map(str::to_string),
            role: StepRole::Reply {
                answers: vec!["cn.xietong.opinion.request".into()],
                cannot_determine,
                escalates: vec!["cn.xietong.opinion.request".into()],
            },
        }
    }

    fn owed(id: i64, request: &str, opened_ms: i64) -> ObligationRow {
        ObligationRow {
            id,
            thread: "t".into(),
            request_id: request.into(),
            request_type: "cn.xietong.opinion.request".into(),
            requester: "procuratorate:330100".into(),
            awaiting: "ip_office:330100".into(),
            opened_ms,
            deadline_ms: 500,
            state: "open".into(),
            answered_by: None,
            answered_ms: None,
            late: None,
            outcome: None,
        }
    }

    #[test]
    fn the_named_request_then_the_oldest_then_the_lowest_id() {
        let candidates = [owed(3, "b", 10), owed(2, "a", 10), owed(1, "c", 20)];
        assert_eq!(answer(&reply(Some("x"), false), Some("c"), &candidates).unwrap().obligation, 1, "named");
        assert_eq!(answer(&reply(Some("x"), false), Some("x"), &candidates).unwrap().obligation, 2, "tie: lowest id");
        let mut answered = candidates.clone();
        answered[1].state = "answered".into();
        assert_eq!(answer(&reply(Some("x"), false), None, &answered).unwrap().obligation, 3);
    }

    #[test]
    fn lateness_outcome_and_escalation() {
        let a = answer(&reply(Some("a"), true), Some("a"), &[owed(1, "a", 0)]).unwrap();
        assert!(a.late, "answered at 1000, due at 500");
        assert_eq!(a.outcome, "cannot_determine");
        assert_eq!(a.escalate.map(|e| (e.obligation, e.request_id)), Some((1, "a".to_string())));
        let mut other = owed(1, "a", 0);
        other.awaiting = "ip_office:330000".into();
        let flagged = answer(&reply(Some("a"), false), Some("a"), &[other]).unwrap_err();
        assert!(flagged.contains("did not ask the sender"), "{flagged}");
        assert!(answer(&reply(None, false), None, &[]).unwrap_err().contains("names no message"));
        assert!(answer(&reply(Some("z"), false), None, &[]).unwrap_err().contains("does not know"));
    }

    #[test]
    fn placement() {
        let mut step = reply(Some("a"), false);
        assert_eq!(place(&step, Some(("a", Some("t")))), Placement::Join("t".into()));
        assert_eq!(place(&step, Some(("a", None))), Placement::RootAt("a".into()));
        assert_eq!(place(&step, None), Placement::Open);
        step.role = StepRole::Progress;
        assert_eq!(place(&step, None), Placement::LatestOfCase("case".into()));
        step.role = StepRole::Other;
        assert_eq!(place(&step, None), Placement::Alone);
        assert_eq!(kind(&step), "message");
    }
}
