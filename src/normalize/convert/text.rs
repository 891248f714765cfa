//! Text as agency systems write it: padded with blanks, digits and letters in full width
//! (`２０２５年３月７日`, `８６万元`). Converters that read a number, a date or a code see the text
//! normalised here first.

use std::borrow::Cow;

/// The text without surrounding blanks (ASCII or the ideographic space U+3000), with the
/// full-width forms of ASCII (U+FF01–U+FF5E: digits, letters, punctuation) and the ideographic
/// space made half-width. Other characters are kept as they are.
pub fn normalized(s: &str) -> Cow<'_, str> {
    trimmed_and_mapped(s, half_width)
}

/// The text without surrounding blanks, with full-width digits and Latin letters made half-width
/// (`ＡＢ１２３` → `AB123`). Full-width punctuation (`，`, `（`, `：`) is how Chinese text is written
/// and stays as it is. This is `convert: text`.
pub fn tidied(s: &str) -> Cow<'_, str> {
    trimmed_and_mapped(s, |c| if c.is_alphanumeric() { half_width(c) } else { c })
}

/// `s` trimmed, each character through `map`; borrowed when nothing changes.
fn trimmed_and_mapped(s: &str, map: impl Fn(char) -> char) -> Cow<'_, str> {
    let trimmed = s.trim();
    if trimmed.chars().all(|c| map(c) == c) {
        return Cow::Borrowed(trimmed);
    }
    Cow::Owned(trimmed.chars().map(map).collect())
}

/// The half-width form of a full-width ASCII character or of the ideographic space; any other
/// character unchanged.
pub fn half_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn tidies_text_keeping_chinese_punctuation() {
        assert_eq!(tidied("  苏公（经）立字〔２０２６〕３１号，ＡＢ\u{3000}"), "苏公（经）立字〔2026〕31号，AB");
        assert!(matches!(tidied("经审查，符合条件。"), Cow::Borrowed(_)));
    }

    #[test]
    fn trims_and_folds_full_width_forms() {
        assert_eq!(normalized("  ２０２５年３月７日\u{3000}"), "2025年3月7日");
        assert_eq!(normalized("ＡＢ－１２３"), "AB-123");
        assert_eq!(normalized("８６０，０００．５０元"), "860,000.50元");
        assert!(matches!(normalized("2025-03-07"), Cow::Borrowed("2025-03-07")));
    }

    proptest! {
        #[test]
        fn full_width_ascii_folds_to_the_same_ascii(s in "[!-~]{0,30}") {
            let wide: String = s.chars().map(|c| char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap()).collect();
            prop_assert_eq!(normalized(&wide), s.trim());
        }

        #[test]
        fn normalising_twice_changes_nothing(s in "\\PC{0,30}") {
            let once = normalized(&s).into_owned();
            prop_assert_eq!(normalized(&once), once.as_str());
        }
    }
}
