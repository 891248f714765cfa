//! Dates and times in the pattern a mapping names (`pattern: "%Y年%m月%d日"`), in the strftime
//! syntax of chrono (<https://docs.rs/chrono/latest/chrono/format/strftime/>). Numbers may be
//! written with or without leading zeros (`%m` reads `3` and `03`). A time without an offset is
//! Beijing time; a pattern with `%z` or `%:z` reads the offset the value gives.

use std::fmt::Write;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone};

use super::text::normalized;
use crate::clock::beijing;

/// A pattern checked when the mapping was compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    /// Whether the pattern reads an offset (`%z`, `%:z`, …).
    offset: bool,
}

/// What a pattern must describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// A day: year, month and day.
    Day,
    /// An instant: a day and a time of day (hours and minutes at least).
    Instant,
}

impl Pattern {
    /// Checks that `text` is a valid pattern that reads back what it writes: a whole day, or a
    /// day and a time.
    pub fn new(text: &str, reads: Reads) -> Result<Pattern, String> {
        if StrftimeItems::new(text).any(|i| matches!(i, Item::Error)) {
            return Err(format!("`{text}` is not a valid pattern (see the strftime syntax in docs/mapping.md)"));
        }
        let sample = beijing().with_ymd_and_hms(2025, 3, 7, 9, 30, 15).single().ok_or("no sample time")?;
        let mut written = String::new();
        if write!(written, "{}", sample.format(text)).is_err() {
            return Err(format!("`{text}` is not a valid pattern (see the strftime syntax in docs/mapping.md)"));
        }
        let ok = match reads {
            Reads::Day => NaiveDate::parse_from_str(&written, text).is_ok_and(|d| d == sample.date_naive()),
            Reads::Instant => NaiveDateTime::parse_from_str(&written, text)
                .is_ok_and(|t| t.date() == sample.date_naive() && t.format("%H%M").to_string() == "0930"),
        };
        if !ok {
            return Err(match reads {
                Reads::Day => {
                    format!("`{text}` does not read a whole day: it needs the year, month and day (%Y, %m, %d)")
                }
                Reads::Instant => format!(
                    "`{text}` does not read a day and a time: it needs the year, month, day, hour and minute (%Y, %m, %d, %H, %M)"
                ),
            });
        }
        let offset = DateTime::<FixedOffset>::parse_from_str(&written, text).is_ok();
        Ok(Pattern { text: text.to_string(), offset })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The day the text gives in one of the patterns, as `YYYY-MM-DD`.
pub fn date(text: &str, patterns: &[Pattern]) -> Result<String, String> {
    let text = normalized(text);
    patterns
        .iter()
        .find_map(|p| NaiveDate::parse_from_str(&text, &p.text).ok())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| expected("a date", patterns))
}

/// The instant the text gives in one of the patterns, as RFC 3339 with `+08:00`.
pub fn instant(text: &str, patterns: &[Pattern]) -> Result<String, String> {
    let text = normalized(text);
    patterns
        .iter()
        .find_map(|p| {
            if p.offset {
                DateTime::parse_from_str(&text, &p.text).ok().map(|t| t.with_timezone(&beijing()))
            } else {
                NaiveDateTime::parse_from_str(&text, &p.text).ok()?.and_local_timezone(beijing()).single()
            }
        })
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
        .ok_or_else(|| expected("a time", patterns))
}

fn expected(what: &str, patterns: &[Pattern]) -> String {
    let listed: Vec<String> = patterns.iter().map(|p| format!("`{}`", p.text)).collect();
    format!("expected {what} in the pattern {}", listed.join(" or "))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn day(p: &str) -> Pattern {
        Pattern::new(p, Reads::Day).unwrap()
    }

    fn instant_pattern(p: &str) -> Pattern {
        Pattern::new(p, Reads::Instant).unwrap()
    }

    #[test]
    fn reads_days_as_agencies_write_them() {
        for (text, pattern) in [
            ("2025年3月7日", "%Y年%m月%d日"),
            ("2025年03月07日", "%Y年%m月%d日"),
            ("２０２５年３月７日", "%Y年%m月%d日"),
            ("20250307", "%Y%m%d"),
            ("2025/3/7", "%Y/%m/%d"),
            ("2025.03.07", "%Y.%m.%d"),
        ] {
            assert_eq!(date(text, &[day(pattern)]), Ok("2025-03-07".to_string()), "{text} in {pattern}");
        }
    }

    #[test]
    fn reads_times_in_beijing_unless_an_offset_is_given() {
        let both = [instant_pattern("%Y年%m月%d日 %H时%M分%S秒"), instant_pattern("%Y年%m月%d日 %H时%M分")];
        assert_eq!(instant("2025年3月7日 9时30分", &both), Ok("2025-03-07T09:30:00+08:00".into()));
        assert_eq!(instant("2025年3月7日 9时30分15秒", &both), Ok("2025-03-07T09:30:15+08:00".into()));
        let hm = [instant_pattern("%Y%m%d %H:%M")];
        assert_eq!(instant("20250307 09:30", &hm), Ok("2025-03-07T09:30:00+08:00".into()));
        let zoned = [instant_pattern("%Y-%m-%d %H:%M:%S %z")];
        assert_eq!(instant("2025-03-07 01:30:00 +0000", &zoned), Ok("2025-03-07T09:30:00+08:00".into()));
    }

    #[test]
    fn refuses_what_does_not_match_naming_the_pattern() {
        let p = [day("%Y年%m月%d日")];
        assert_eq!(date("2025-03-07", &p), Err("expected a date in the pattern `%Y年%m月%d日`".into()));
        assert!(date("2025年2月30日", &p).is_err());
        let t = [instant_pattern("%Y%m%d%H%M")];
        assert!(instant("202503072561", &t).is_err());
    }

    #[test]
    fn checks_patterns_when_the_mapping_is_compiled() {
        assert!(Pattern::new("%Y年%m月", Reads::Day).unwrap_err().contains("whole day"));
        assert!(Pattern::new("%Y-%m-%d", Reads::Instant).unwrap_err().contains("a day and a time"));
        assert!(Pattern::new("%Y-%m-%d %Q", Reads::Day).unwrap_err().contains("not a valid pattern"));
        assert!(!instant_pattern("%Y-%m-%d %H:%M").offset);
        assert!(instant_pattern("%Y-%m-%dT%H:%M:%S%:z").offset);
    }

    proptest! {
        #[test]
        fn chinese_dates_keep_their_instant(secs in 0i64..4_102_444_800, padded: bool, wide: bool) {
            let t = DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&beijing());
            let written = if padded { t.format("%Y年%m月%d日 %H时%M分%S秒") } else { t.format("%Y年%-m月%-d日 %-H时%-M分%-S秒") };
            let written = written.to_string();
            let written = if wide {
                written.chars().map(|c| if c.is_ascii_digit() { char::from_u32(c as u32 - 0x30 + 0xFF10).unwrap() } else { c }).collect()
            } else { written };
            let out = instant(&written, &[instant_pattern("%Y年%m月%d日 %H时%M分%S秒")]).unwrap();
            prop_assert_eq!(DateTime::parse_from_rfc3339(&out).unwrap().timestamp(), secs);
            prop_assert!(out.ends_with("+08:00"));
        }

        #[test]
        fn compact_days_round_trip(days in 0i64..80_000) {
            let d = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Days::new(days as u64);
            prop_assert_eq!(date(&d.format("%Y%m%d").to_string(), &[day("%Y%m%d")]), Ok(d.format("%Y-%m-%d").to_string()));
        }

        #[test]
        fn never_panics(text in "\\PC{0,30}", pattern in "[%YmdHMSz年月日时分秒:/. -]{0,16}") {
            if let Ok(p) = Pattern::new(&pattern, Reads::Instant) {
                let _ = instant(&text, &[p]);
            }
            if let Ok(p) = Pattern::new(&pattern, Reads::Day) {
                let _ = date(&text, &[p]);
            }
        }
    }
}
