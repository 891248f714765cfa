//! Checking the chain: every record in order, each linked to the one before, each hash matching
//! its content, and the signed checkpoints matching the records they name.

use std::collections::BTreeMap;

use serde::Serialize;

use super::checkpoint::{Checkpoint, Verifier};
use super::{GENESIS, Record, link};

/// A record as the store keeps it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub seq: i64,
    /// The canonical JSON of the [`Record`].
    pub record: String,
    pub prev: String,
    pub hash: String,
}

/// The first broken link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub seq: i64,
    pub why: String,
}

/// What verifying found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub records: i64,
    /// The last record's sequence and hash.
    pub head: Option<(i64, String)>,
    pub checkpoints: usize,
    /// Checkpoints whose signature was checked (none without a key).
    pub signatures_checked: usize,
    pub broken: Option<Broken>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies `records` (in sequence order) and `checkpoints`; stops at the first broken link.
pub fn verify(
    records: impl IntoIterator<Item = Result<Stored, String>>,
    checkpoints: &[Checkpoint],
    verifier: Option<&Verifier>,
) -> Report {
    let mut check = Check::new(checkpoints, verifier);
    for s in records {
        if !check.record(s) {
            break;
        }
    }
    check.finish()
}

/// A verification in progress: the checkpoints checked first, then the records one after
/// another (so a chain of any length is read in pages).
pub struct Check<'a> {
    report: Report,
    pending: BTreeMap<i64, &'a Checkpoint>,
    prev: String,
    expected: i64,
}

impl<'a> Check<'a> {
    /// Checks the checkpoints' signatures (with `verifier`, when there is one).
    pub fn new(checkpoints: &'a [Checkpoint], verifier: Option<&Verifier>) -> Check<'a> {
        let mut report = Report { checkpoints: checkpoints.len(), ..Report::default() };
        let mut pending: BTreeMap<i64, &Checkpoint> = BTreeMap::new();
        for c in checkpoints {
            if let Some(v) = verifier {
                if !v.check(c) {
                    report.broken = Some(Broken {
                        seq: c.seq,
                        why: format!("the checkpoint at record {} is not signed by key {}", c.seq, v.key_id()),
                    });
                    break;
                }
                report.signatures_checked += 1;
            }
            pending.insert(c.seq, c);
        }
        Check { report, pending, prev: GENESIS.to_string(), expected: 1 }
    }

    /// Checks the next record; false once the chain is broken (later records change nothing).
    pub fn record(&mut self, s: Result<Stored, String>) -> bool {
        if self.report.broken.is_some() {
            return false;
        }
        let expected = self.expected;
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                self.report.broken = Some(Broken {
                    seq: expected,
                    why: format!("the log cannot be read from record {expected} on: {e}"),
                });
                return false;
            }
        };
        let fail = |why: String| Some(Broken { seq: s.seq, why });
        let record: Record = match serde_json::from_str(&s.record) {
            Ok(r) => r,
            Err(e) => {
                self.report.broken = fail(format!("record {} is not an audit record ({e})", s.seq));
                return false;
            }
        };
        self.report.broken = if s.seq != expected {
            fail(format!("records {expected} to {} are missing", s.seq - 1))
        } else if record.seq != s.seq {
            fail(format!("record {} says it is record {}: renumbered", s.seq, record.seq))
        } else if s.prev != self.prev {
            fail(format!(
                "record {} does not follow record {}: a record before it was changed or removed",
                s.seq,
                s.seq - 1
            ))
        } else if link(record.alg, &s.prev, &s.record) != s.hash {
            fail(format!("record {} does not match its hash: it was edited", s.seq))
        } else if self.pending.get(&s.seq).is_some_and(|c| c.hash != s.hash) {
            fail(format!("record {} is not the one the signed checkpoint names: the chain was rewritten", s.seq))
        } else {
            None
        };
        if self.report.broken.is_some() {
            return false;
        }
        self.pending.remove(&s.seq);
        self.prev = s.hash.clone();
        self.report.records += 1;
        self.report.head = Some((s.seq, s.hash));
        self.expected += 1;
        true
    }

    /// The report: a checkpoint past the last record means records were removed.
    pub fn finish(mut self) -> Report {
        if self.report.broken.is_none()
            && let Some((seq, _)) = self.pending.first_key_value()
        {
            self.report.broken = Some(Broken {
                seq: *seq,
                why: format!(
                    "a signed checkpoint names record {seq}, but the log ends at record {}: records were removed",
                    self.expected - 1
                ),
            });
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::super::checkpoint::Signer;
    use super::super::{Algorithm, Entry};
    use super::*;

    fn chain(n: i64, alg: Algorithm) -> Vec<Stored> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let record =
                    Record { seq, at: "t".into(), alg, entry: Entry::new("accepted").actor("ip_office:330100") }
                        .canonical();
                let hash = link(alg, &prev, &record);
                let s = Stored { seq, record, prev: prev.clone(), hash: hash.clone() };
                prev = hash;
                s
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_with_either_algorithm() {
        for alg in [Algorithm::Sha256, Algorithm::Sm3] {
            let r = verify(chain(5, alg).into_iter().map(Ok), &[], None);
            assert!(r.intact(), "{r:?}");
            assert_eq!(r.records, 5);
        }
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_its_record() {
        let mut edited = chain(5, Algorithm::Sha256);
        edited[2].record = edited[2].record.replace("330100", "330000");
        assert_eq!(verify(edited.into_iter().map(Ok), &[], None).broken.unwrap().seq, 3);

        let mut removed = chain(5, Algorithm::Sha256);
        removed.remove(1);
        assert_eq!(verify(removed.into_iter().map(Ok), &[], None).broken.unwrap().why, "records 2 to 2 are missing");

        // Rewritten from record 3 on, consistently: only the signed checkpoint shows it.
        let signer = Signer::generate();
        let original = chain(5, Algorithm::Sha256);
        let checkpoint = signer.sign(4, &original[3].hash, "t");
        let mut rewritten = original[..2].to_vec();
        let mut prev = rewritten[1].hash.clone();
        for seq in 3..=5 {
            let record =
                Record { seq, at: "t".into(), alg: Algorithm::Sha256, entry: Entry::new("accepted") }.canonical();
            let hash = link(Algorithm::Sha256, &prev, &record);
            rewritten.push(Stored { seq, record, prev: prev.clone(), hash: hash.clone() });
            prev = hash;
        }
        assert!(
            verify(rewritten.clone().into_iter().map(Ok), &[], None).intact(),
            "without a checkpoint it cannot be told"
        );
        let r = verify(rewritten.into_iter().map(Ok), std::slice::from_ref(&checkpoint), Some(&signer.verifier()));
        assert_eq!(r.broken.unwrap().seq, 4);

        let mut truncated = original.clone();
        truncated.truncate(3);
        let r = verify(truncated.into_iter().map(Ok), &[checkpoint], Some(&signer.verifier()));
        assert!(r.broken.unwrap().why.contains("records were removed"));
    }
}
