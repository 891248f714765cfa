//! `permissions.yaml`: which kinds and levels of agency may send which message types. A type no
//! grant names cannot be sent by any agency. The gateway's own overdue notices are never
//! grantable.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::ConfigError;
use crate::model::schema::Schemas;
use crate::model::{Code, Problem, Sender, SenderKind, types};
use crate::normalize::SpecError;
use crate::route::divisions::Level;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsFile {
    #[serde(default)]
    send: Vec<GrantSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantSpec {
    types: Vec<Spanned<String>>,
    kinds: Vec<Spanned<String>>,
    /// All levels when absent.
    #[serde(default)]
    levels: Option<Vec<Spanned<String>>>,
}

/// Who may send a type: any of these grants.
#[derive(Clone, Debug)]
struct Grant {
    kinds: Vec<SenderKind>,
    /// None: every level.
    levels: Option<Vec<Level>>,
}

impl Grant {
    fn allows(&self, sender: &Sender) -> bool {
        self.kinds.contains(&sender.kind())
            && match (&self.levels, sender) {
                (None, _) => true,
                (Some(ls), Sender::Agency(a)) => ls.contains(&Level::of(&a.division)),
                // A hub has no level; the loader refuses hubs in a grant with levels.
                (Some(_), Sender::Hub(_)) => false,
            }
    }

    fn describe(&self) -> String {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
        match &self.levels {
            None => kinds.join(" or "),
            Some(ls) => {
                let levels: Vec<&str> = ls.iter().map(|l| l.as_str()).collect();
                format!("{} at {} level", kinds.join(" or "), levels.join(" or "))
            }
        }
    }
}

/// The compiled permissions.
#[derive(Clone, Debug, Default)]
pub struct Permissions {
    by_type: HashMap<&'static str, Vec<Grant>>,
    /// The catalogue's types, in its order.
    catalogue: Vec<&'static str>,
}

impl Permissions {
    /// Reads `path`, which must exist: without it nobody could send anything, which is never
    /// what an operator means. Problems go to `errors`.
    pub fn load(path: &Path, schemas: &Schemas, errors: &mut Vec<ConfigError>) -> Permissions {
        let mut out =
            Permissions { catalogue: schemas.types().iter().map(|t| t.name).collect(), ..Permissions::default() };
        let Some(file) = super::files::read_yaml::<PermissionsFile>(path, false, errors) else { return out };
        let mut error =
            |at: &serde_saphyr::Location, m: String| errors.push(ConfigError::from_spec(path, SpecError::at(at, m)));
        for g in file.send {
            let kinds: Vec<SenderKind> = g
                .kinds
                .iter()
                .filter_map(|k| k.value.parse().map_err(|e: String| error(&k.referenced, e)).ok())
                .collect();
            let hub = g.kinds.iter().find(|k| k.value.parse() == Ok(SenderKind::Hub));
            if let (Some(_), Some(hub)) = (&g.levels, hub) {
                error(
                    &hub.referenced,
                    "a hub has no level: grant hubs in a grant of their own, without `levels`".into(),
                );
            }
            let levels = g.levels.map(|ls| {
                ls.iter()
                    .filter_map(|l| match Level::named(&l.value) {
                        Some(level) => Some(level),
                        None => {
                            error(
                                &l.referenced,
                                format!(
                                    "unknown level `{}`; expected national, province, prefecture or county",
                                    l.value
                                ),
                            );
                            None
                        }
                    })
                    .collect()
            });
            for t in &g.types {
                match schemas.lookup(&t.value) {
                    Some(mt) if types::gateway_only(mt.name) => error(
                        &t.referenced,
                        format!("`{}` is the gateway's own notice: no agency may send it", mt.name),
                    ),
                    Some(mt) => out
                        .by_type
                        .entry(mt.name)
                        .or_default()
                        .push(Grant { kinds: kinds.clone(), levels: levels.clone() }),
                    None => error(&t.referenced, format!("unknown message type `{}`", t.value)),
                }
            }
        }
        out
    }

    /// How many message types some agency may send.
    pub fn types_granted(&self) -> usize {
        self.by_type.len()
    }

    /// Whether some sender of `kind`, at some level, may send `message_type`.
    pub fn kind_may_send(&self, message_type: &str, kind: SenderKind) -> bool {
        self.by_type.get(message_type).is_some_and(|gs| gs.iter().any(|g| g.kinds.contains(&kind)))
    }

    /// The message types `sender` may send, in the catalogue's order.
    pub fn types_for(&self, sender: &Sender) -> Vec<&'static str> {
        self.catalogue
            .iter()
            .copied()
            .filter(|t| self.by_type.get(t).is_some_and(|gs| gs.iter().any(|g| g.allows(sender))))
            .collect()
    }

    /// Whether `sender` may send messages of `message_type`; the refusal says who may.
    pub fn check(&self, sender: &Sender, message_type: &str) -> Result<(), Problem> {
        let grants = self.by_type.get(message_type).map(Vec::as_slice).unwrap_or_default();
        if grants.iter().any(|g| g.allows(sender)) {
            return Ok(());
        }
        let what = match sender {
            Sender::Agency(a) => format!("{} at {} level", a.kind, Level::of(&a.division)),
            Sender::Hub(_) => "a regional hub".to_string(),
        };
        let who = if grants.is_empty() {
            "no one may send it".to_string()
        } else {
            let allowed: Vec<String> = grants.iter().map(Grant::describe).collect();
            format!("only {} may", allowed.join("; or "))
        };
        Err(Problem::new(
            Code::Forbidden,
            format!("{sender} ({what}) may not send {message_type}: {who} (permissions.yaml)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Permissions, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("permissions.yaml");
        std::fs::write(&path, text).unwrap();
        let mut errors = Vec::new();
        let p = Permissions::load(&path, &Schemas::load().unwrap(), &mut errors);
        (p, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn mistakes_are_reported_with_their_line() {
        let (_, errors) = load(
            "send:\n  - types: [cn.xietong.bulletin, cn.xietong.nonsense]\n    kinds: [ip_office, police]\n    levels: [city]\n  - types: [cn.xietong.thread.overdue]\n    kinds: [ip_office]\n",
        );
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].contains(":3:") && errors[0].contains("unknown sender kind `police`"), "{}", errors[0]);
        assert!(errors[1].contains(":4:") && errors[1].contains("unknown level `city`"), "{}", errors[1]);
        assert!(errors[2].contains(":2:") && errors[2].contains("cn.xietong.nonsense"), "{}", errors[2]);
        assert!(errors[3].contains(":5:") && errors[3].contains("the gateway's own notice"), "{}", errors[3]);
    }

    #[test]
    fn a_refusal_says_who_may() {
        let (p, errors) = load(
            "send:\n  - types: [cn.xietong.major_case.supervision]\n    kinds: [ip_office, procuratorate]\n    levels: [national]\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let spp: Sender = "procuratorate:000000".parse().unwrap();
        let county: Sender = "procuratorate:510104".parse().unwrap();
        assert!(p.check(&spp, "cn.xietong.major_case.supervision").is_ok());
        let refused = p.check(&county, "cn.xietong.major_case.supervision").unwrap_err();
        assert_eq!(refused.code, Code::Forbidden);
        assert!(
            refused.message.contains("only ip_office or procuratorate at national level may"),
            "{}",
            refused.message
        );
        let nobody = p.check(&spp, "cn.xietong.bulletin").unwrap_err();
        assert!(nobody.message.contains("no one may send it"), "{}", nobody.message);
    }
}
