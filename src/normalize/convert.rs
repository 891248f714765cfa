//! The converters a mapping rule may name in `convert:`. A fixed set: configuration chooses
//! among them, it never supplies code. Errors describe the expected form and never quote the
//! value (it may be sensitive).
//!
//! Converters that read a number, a date or a code first trim the text and make full-width
//! digits and letters half-width ([`text::normalized`]).

mod amount;

pub use amount::EXPECTED as YUAN_EXPECTED;
pub mod pattern;
pub mod text;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::{Number, Value};

use self::pattern::Pattern;
use self::text::normalized;

use crate::clock::beijing;
use crate::model::{AgencyId, Division, Sender};
use crate::secrecy::Level;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Convert {
    /// Any JSON value, copied as it is (the default).
    Json,
    /// A string; a number becomes its decimal text.
    String,
    /// Like `string`, with surrounding blanks trimmed and full-width digits and Latin letters
    /// made half-width (Chinese punctuation is kept).
    Text,
    /// An integer, or a string of digits.
    Integer,
    /// A number, or a string holding one.
    Number,
    /// `true`/`false`, or the strings `true`, `false`, `是`, `否`.
    Boolean,
    /// `YYYY-MM-DD`, checked to be a real day; or the rule's `pattern`.
    Date,
    /// `YYYY-MM-DD HH:MM:SS` in Beijing local time → RFC 3339 with `+08:00`; or the rule's
    /// `pattern`, Beijing time unless the pattern reads an offset.
    BeijingDatetime,
    /// RFC 3339 with any offset → the same instant with `+08:00`; or the rule's `pattern`, as
    /// for `beijing_datetime`.
    Datetime,
    /// An amount in yuan: a non-negative number, or a string such as `1,250,000.00`,
    /// `860,000元`, `86万元`, `1.2亿元` (exact, at most two decimals of a yuan) → a number.
    Yuan,
    /// A six-digit division code.
    Division,
    /// An array of six-digit division codes.
    Divisions,
    /// An agency id `KIND:DIVISION`.
    Agency,
    /// A sender: an agency id, or a regional hub `hub:REGION`.
    Sender,
    /// A classification level (公开, 内部 or 非密, 工作秘密, 秘密, 机密, 绝密; a `★` period is
    /// allowed) → the level's name (非密 becomes 内部).
    Classification,
}

impl Convert {
    /// Whether the output keeps the input's structure, so that a pointer into the input maps to
    /// the same pointer into the output.
    pub fn keeps_structure(self) -> bool {
        matches!(self, Convert::Json)
    }

    /// Whether a rule with this converter may name a `pattern`, and what the pattern must read.
    pub fn pattern_reads(self) -> Option<pattern::Reads> {
        match self {
            Convert::Date => Some(pattern::Reads::Day),
            Convert::BeijingDatetime | Convert::Datetime => Some(pattern::Reads::Instant),
            _ => None,
        }
    }

    pub fn apply(self, value: &Value) -> Result<Value, String> {
        self.apply_with(value, &[])
    }

    /// Converts `value`; a date or time converter reads it in `patterns` when there are any.
    pub fn apply_with(self, value: &Value, patterns: &[Pattern]) -> Result<Value, String> {
        if !patterns.is_empty() && self.pattern_reads().is_some() {
            let s = text(value, "a date or time")?;
            return match self {
                Convert::Date => pattern::date(s, patterns),
                _ => pattern::instant(s, patterns),
            }
            .map(Value::String);
        }
        match self {
            Convert::Json => Ok(value.clone()),
            Convert::String => match value {
                Value::String(_) => Ok(value.clone()),
                Value::Number(n) => Ok(Value::String(n.to_string())),
                _ => Err("expected a string".into()),
            },
            Convert::Text => match value {
                Value::String(s) => Ok(Value::String(text::tidied(s).into_owned())),
                Value::Number(n) => Ok(Value::String(n.to_string())),
                _ => Err("expected a string".into()),
            },
            Convert::Integer => integer(value),
            Convert::Number => number(value),
            Convert::Boolean => match value {
                Value::Bool(_) => Ok(value.clone()),
                Value::String(s) if s == "true" || s == "是" => Ok(Value::Bool(true)),
                Value::String(s) if s == "false" || s == "否" => Ok(Value::Bool(false)),
                _ => Err("expected true or false (or 是/否)".into()),
            },
            Convert::Date => date(&normalized(text(value, "a date YYYY-MM-DD")?)).map(Value::String),
            Convert::BeijingDatetime => {
                beijing_datetime(&normalized(text(value, "a time YYYY-MM-DD HH:MM:SS")?)).map(Value::String)
            }
            Convert::Datetime => datetime(&normalized(text(value, "an RFC 3339 time with offset")?)).map(Value::String),
            Convert::Yuan => amount::yuan(value),
            Convert::Division => division(value, "expected a six-digit division code"),
            Convert::Divisions => {
                let items = value.as_array().ok_or("expected an array of six-digit division codes")?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        division(item, "expected a six-digit division code").map_err(|e| format!("item {i}: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
            Convert::Agency => normalized(text(value, "an agency id KIND:DIVISION")?)
                .parse::<AgencyId>()
                .map(|a| Value::String(a.to_string()))
                .map_err(|_| "expected an agency id KIND:DIVISION, e.g. ip_office:330100".into()),
            Convert::Sender => normalized(text(value, "an agency id KIND:DIVISION or a hub hub:REGION")?)
                .parse::<Sender>()
                .map(|s| Value::String(s.to_string()))
                .map_err(|_| "expected an agency id KIND:DIVISION (e.g. ip_office:330100) or a hub hub:REGION".into()),
            Convert::Classification => Level::parse(&normalized(text(value, "a classification level")?))
                .map(|l| Value::String(l.name().to_string()))
                .ok_or_else(|| format!("unknown classification; expected one of {}", Level::NAMES)),
        }
    }
}

fn text<'a>(value: &'a Value, expected: &str) -> Result<&'a str, String> {
    value.as_str().ok_or_else(|| format!("expected {expected} as a string"))
}

/// A six-digit division code, written as text (a number would lose leading zeros elsewhere,
/// so it is refused like any other non-text value).
fn division(value: &Value, expected: &str) -> Result<Value, String> {
    let code = value.as_str().ok_or_else(|| expected.to_string())?;
    Division::parse(&normalized(code)).map(|d| Value::String(d.to_string()))
}

fn integer(value: &Value) -> Result<Value, String> {
    const EXPECTED: &str = "expected an integer";
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        Value::String(s) => {
            let s = normalized(s);
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(EXPECTED.into());
            }
            s.parse::<u64>().map(|n| Value::Number(n.into())).map_err(|_| EXPECTED.into())
        }
        _ => Err(EXPECTED.into()),
    }
}

fn number(value: &Value) -> Result<Value, String> {
    match value {
        Value::Number(_) => Ok(value.clone()),
        Value::String(s) => normalized(s)
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "expected a number".into()),
        _ => Err("expected a number".into()),
    }
}

fn date(s: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected a date YYYY-MM-DD";
    if s.len() != 10 {
        return Err(EXPECTED.into());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|_| s.to_string()).map_err(|_| EXPECTED.into())
}

/// Beijing has kept UTC+8 all year since 1992; the native systems write local time without a
/// zone.
fn beijing_datetime(s: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected Beijing local time YYYY-MM-DD HH:MM:SS";
    if s.len() != 19 {
        return Err(EXPECTED.into());
    }
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").map_err(|_| EXPECTED.to_string())?;
    let at = local.and_local_timezone(beijing()).single().ok_or_else(|| EXPECTED.to_string())?;
    Ok(at.to_rfc3339_opts(SecondsFormat::AutoSi, false))
}

fn datetime(s: &str) -> Result<String, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&beijing()).to_rfc3339_opts(SecondsFormat::AutoSi, false))
        .map_err(|_| "expected an RFC 3339 time with offset, e.g. 2026-11-20T14:03:22+08:00".into())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::amount::group_thousands;
    use super::*;

    #[test]
    fn converts_the_forms_of_the_native_formats() {
        assert_eq!(Convert::Yuan.apply(&json!("1,250,000.00")), Ok(json!(1250000)));
        assert_eq!(Convert::Yuan.apply(&json!("386,400.50")), Ok(json!(386400.5)));
        assert_eq!(Convert::Yuan.apply(&json!(48600000)), Ok(json!(48600000)));
        assert_eq!(
            Convert::BeijingDatetime.apply(&json!("2026-11-20 14:03:22")),
            Ok(json!("2026-11-20T14:03:22+08:00"))
        );
        assert_eq!(Convert::Datetime.apply(&json!("2026-11-20T06:03:22Z")), Ok(json!("2026-11-20T14:03:22+08:00")));
        assert_eq!(Convert::Classification.apply(&json!("非密")), Ok(json!("内部")));
        assert_eq!(Convert::Classification.apply(&json!("机密★10年")), Ok(json!("机密")));
        assert_eq!(Convert::Divisions.apply(&json!(["330102", "330106"])), Ok(json!(["330102", "330106"])));
        assert_eq!(Convert::Integer.apply(&json!("120331")), Ok(json!(120331)));
        assert_eq!(Convert::String.apply(&json!(1234567)), Ok(json!("1234567")));
        assert_eq!(Convert::Boolean.apply(&json!("是")), Ok(json!(true)));
        assert_eq!(Convert::Date.apply(&json!("2026-10-08")), Ok(json!("2026-10-08")));
    }

    #[test]
    fn refuses_malformed_values_with_the_expected_form() {
        for (convert, bad) in [
            (Convert::Yuan, json!("1,25,000.00")),
            (Convert::Yuan, json!("1250000.001")),
            (Convert::Yuan, json!("-5")),
            (Convert::Yuan, json!(-5)),
            (Convert::Yuan, json!("")),
            (Convert::Yuan, json!(",100")),
            (Convert::BeijingDatetime, json!("2026-11-20T14:03:22")),
            (Convert::BeijingDatetime, json!("2026-02-30 10:00:00")),
            (Convert::BeijingDatetime, json!("2026-1-5 10:00:00")),
            (Convert::Datetime, json!("2026-11-20 14:03:22")),
            (Convert::Date, json!("2026-13-01")),
            (Convert::Date, json!("2026-1-01")),
            (Convert::Division, json!("33010")),
            (Convert::Division, json!(330100)),
            (Convert::Divisions, json!(["330102", 5])),
            (Convert::Classification, json!("保密")),
            (Convert::Integer, json!("12.5")),
            (Convert::Agency, json!("police:330100")),
        ] {
            let err = convert.apply(&bad).expect_err(&format!("{convert:?} should refuse {bad}"));
            assert!(
                err.starts_with("expected")
                    || err.starts_with("item")
                    || err.starts_with("unknown")
                    || err.starts_with("a division"),
                "{err}"
            );
        }
    }

    proptest! {
        #[test]
        fn yuan_amounts_round_trip(units in 0u64..1_000_000_000_000, cents in 0u64..100, grouped: bool) {
            let whole = if grouped { group_thousands(units) } else { units.to_string() };
            let text = format!("{whole}.{cents:02}");
            let value = Convert::Yuan.apply(&Value::String(text)).unwrap();
            let expected = units as f64 + cents as f64 / 100.0;
            prop_assert!((value.as_f64().unwrap() - expected).abs() < 1e-6 * expected.max(1.0));
            if cents == 0 { prop_assert!(value.is_u64()); }
        }

        #[test]
        fn beijing_times_keep_their_instant(secs in 0i64..4_102_444_800) {
            let t = DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&beijing());
            let local = t.format("%Y-%m-%d %H:%M:%S").to_string();
            let out = Convert::BeijingDatetime.apply(&Value::String(local)).unwrap();
            let back = DateTime::parse_from_rfc3339(out.as_str().unwrap()).unwrap();
            prop_assert_eq!(back.timestamp(), secs);
            prop_assert!(out.as_str().unwrap().ends_with("+08:00"));
        }

        #[test]
        fn converters_never_panic(s in ".{0,40}", n in any::<f64>(), i in any::<i64>()) {
            let all = [Convert::Json, Convert::String, Convert::Text, Convert::Integer, Convert::Number, Convert::Boolean,
                       Convert::Date, Convert::BeijingDatetime, Convert::Datetime, Convert::Yuan,
                       Convert::Division, Convert::Divisions, Convert::Agency, Convert::Classification];
            for c in all {
                let _ = c.apply(&Value::String(s.clone()));
                let _ = c.apply(&json!(n));
                let _ = c.apply(&json!(i));
                let _ = c.apply(&json!([s.clone()]));
            }
        }
    }
}
