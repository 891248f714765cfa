//! Amounts in yuan as agencies write them: `860000`, `860,000.00`, `860,000元`, `86万元`,
//! `3.5万元`, `1.2亿元`, in full-width digits or not. The arithmetic is exact: `3.5万元` is
//! 35000 yuan, computed in whole fen (分, 0.01 yuan), never through a floating-point product.

use serde_json::{Number, Value};

use super::text::normalized;

pub const EXPECTED: &str = "expected an amount in yuan such as 860,000.00, 860000元, 86万元 or 1.2亿元 \
     (non-negative, at most two decimals of a yuan)";

/// The units an amount may end with, and how many yuan each is.
const UNITS: [(&str, u128); 5] =
    [("亿元", 100_000_000), ("亿", 100_000_000), ("万元", 10_000), ("万", 10_000), ("元", 1)];

/// The largest amount accepted, in fen: amounts above 2^53 fen would lose precision as JSON
/// numbers in most readers.
const MAX_FEN: u128 = 1 << 53;

pub fn yuan(value: &Value) -> Result<Value, String> {
    match value {
        Value::Number(n) if n.as_f64().is_some_and(|f| f >= 0.0) => Ok(value.clone()),
        Value::String(s) => fen(s).map(to_json).ok_or_else(|| EXPECTED.into()),
        _ => Err(EXPECTED.into()),
    }
}

/// The amount in fen, if the text is a well-formed amount.
pub fn fen(text: &str) -> Option<u128> {
    let text = normalized(text);
    let (number, per_unit) = UNITS
        .iter()
        .find_map(|(suffix, yuan)| text.strip_suffix(suffix).map(|n| (n.trim_end(), *yuan)))
        .unwrap_or((&text, 1));
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if !well_grouped(whole) || !fraction.bytes().all(|b| b.is_ascii_digit()) || number.ends_with('.') {
        return None;
    }
    let digits: String = whole.split(',').chain([fraction]).collect();
    if digits.len() > 30 {
        return None;
    }
    let mantissa: u128 = digits.parse().ok()?;
    let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let product = mantissa.checked_mul(per_unit)?.checked_mul(100)?;
    // Whole fen only: 1.2345678万元 has a fraction of a fen and is refused, not rounded.
    (product % scale == 0).then_some(product / scale).filter(|f| *f <= MAX_FEN)
}

/// `1,234,567` or `1234567`: digits, optionally in groups of three after a first group of one
/// to three.
fn well_grouped(whole: &str) -> bool {
    let digits = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or_default();
    let rest: Vec<&str> = groups.collect();
    if rest.is_empty() {
        return digits(first);
    }
    digits(first) && first.len() <= 3 && rest.iter().all(|g| g.len() == 3 && digits(g))
}

/// Whole yuan as a JSON integer, otherwise the shortest decimal with the fen.
fn to_json(fen: u128) -> Value {
    let (yuan, rest) = (fen / 100, fen % 100);
    if rest == 0 {
        return Value::Number(Number::from(u64::try_from(yuan).unwrap_or(u64::MAX)));
    }
    // Below 2^53 fen every such decimal has an f64 whose shortest text is exactly it.
    format!("{yuan}.{rest:02}").parse::<f64>().ok().and_then(Number::from_f64).map_or(Value::Null, Value::Number)
}

/// `1234567` as `1,234,567` (for the tests here and of the converters).
#[cfg(test)]
pub(super) fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_amounts_with_units_exactly() {
        for (text, expected) in [
            ("86万元", json!(860000)),
            ("3.5万元", json!(35000)),
            ("1.2亿元", json!(120000000)),
            ("860,000元", json!(860000)),
            ("860000", json!(860000)),
            ("８６万元", json!(860000)),
            ("１，２５０，０００．００", json!(1250000)),
            (" 0.35万 ", json!(3500)),
            ("1.23456万元", json!(12345.6)),
            ("386,400.50", json!(386400.5)),
            ("12 万元", json!(120000)),
            ("0.07元", json!(0.07)),
        ] {
            assert_eq!(yuan(&json!(text)), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        for text in [
            "",
            "万元",
            "1,25,000",
            "1.001",
            "1.2345678万元",
            "-5",
            "86万美元",
            "1.",
            ".5",
            "1e6",
            "86万元整",
            "1..2",
            ",100",
        ] {
            assert_eq!(yuan(&json!(text)), Err(EXPECTED.to_string()), "{text}");
        }
        assert!(yuan(&json!(-5)).is_err());
        assert!(yuan(&json!("9".repeat(40))).is_err());
    }

    proptest! {
        #[test]
        fn wan_amounts_are_exact(whole in 0u64..100_000_000, tenths_of_fen in 0u64..1_000_000) {
            // WHOLE.FFFFFF万元 is WHOLE*10000 + FFFFFF/100 yuan: exact to the fen.
            let text = format!("{whole}.{tenths_of_fen:06}万元");
            let fen = u128::from(whole) * 1_000_000 + u128::from(tenths_of_fen);
            prop_assert_eq!(super::fen(&text), Some(fen));
            let value = yuan(&json!(text)).unwrap();
            let printed = value.to_string();
            let expected = if fen % 100 == 0 { (fen / 100).to_string() } else {
                format!("{}.{:02}", fen / 100, fen % 100).trim_end_matches('0').to_string()
            };
            prop_assert_eq!(printed, expected);
        }

        #[test]
        fn grouped_and_plain_amounts_agree(units in 0u64..1_000_000_000_000, fen in 0u64..100, wide: bool) {
            let plain = format!("{units}.{fen:02}");
            let grouped = format!("{}.{fen:02}元", group_thousands(units));
            let grouped = if wide { to_full_width(&grouped) } else { grouped };
            prop_assert_eq!(yuan(&json!(plain)), yuan(&json!(grouped)));
        }

        #[test]
        fn never_panics(s in "[0-9,.万亿元 ０-９，．]{0,40}") {
            let _ = yuan(&json!(s));
        }
    }

    fn to_full_width(s: &str) -> String {
        s.chars()
            .map(|c| if ('!'..='~').contains(&c) { char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap() } else { c })
            .collect()
    }
}
