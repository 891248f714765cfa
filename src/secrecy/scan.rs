//! Finds state-secret markings (`秘密★`, `机密★10年`, `绝密★长期`) inside free text.
//!
//! A marking is a state-secret level name followed by a star, with or without a protection
//! period after it. The scanner tolerates what careless or evasive copying inserts between
//! the name and the star (spaces, full-width spaces, zero-width characters) and accepts the
//! star as ★, ☆, ＊ or *. The level name alone (as in 商业秘密, "trade secret") is not a
//! marking, and neither is 工作秘密★ (a work secret is not a state secret).

use jsonptr::{Pointer, PointerBuf};

use crate::model::walk::WalkPath;
use serde_json::Value;

const LEVEL_NAMES: [&str; 3] = ["秘密", "机密", "绝密"];

fn is_star(c: char) -> bool {
    matches!(c, '★' | '☆' | '＊' | '*')
}

/// Characters that render as nothing and may sit between a level name and its star.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}')
}

/// A marking found in text: the level name it carries and the character offset where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marking {
    pub level: &'static str,
    pub offset: usize,
}

/// The first state-secret marking in `text`, if any.
pub fn find_marking(text: &str) -> Option<Marking> {
    // Fast path: no star, no marking.
    if !text.chars().any(is_star) {
        return None;
    }
    // Visible characters with their offsets; invisible ones and whitespace are kept out so a
    // name and its star match across them.
    let visible: Vec<(usize, char)> =
        text.chars().enumerate().filter(|(_, c)| !is_invisible(*c) && !c.is_whitespace()).collect();
    for (i, &(_, c)) in visible.iter().enumerate() {
        if !is_star(c) || i < 2 {
            continue;
        }
        let (start, first) = visible[i - 2];
        let (_, second) = visible[i - 1];
        for name in LEVEL_NAMES {
            let mut chars = name.chars();
            if chars.next() == Some(first) && chars.next() == Some(second) {
                // 工作秘密 (work secret) ends in 秘密 but is not a state secret.
                let work_secret = name == "秘密" && i >= 4 && visible[i - 4].1 == '工' && visible[i - 3].1 == '作';
                if !work_secret {
                    return Some(Marking { level: name, offset: start });
                }
            }
        }
    }
    None
}

/// A marking found in a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub pointer: PointerBuf,
    pub marking: Marking,
}

/// Scans every string and object key of `doc`, except the subtrees for which `skip` is true
/// (fields already marked and about to be removed, and the markings' own metadata).
pub fn scan(doc: &Value, skip: &dyn Fn(&Pointer) -> bool) -> Option<Found> {
    walk(doc, &mut WalkPath::root(), skip)
}

fn walk(value: &Value, path: &mut WalkPath, skip: &dyn Fn(&Pointer) -> bool) -> Option<Found> {
    if skip(path.pointer()) {
        return None;
    }
    match value {
        Value::String(s) => find_marking(s).map(|marking| Found { pointer: path.to_buf(), marking }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let back = path.index(i);
            let found = walk(item, path, skip);
            path.back(back);
            found
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let back = path.key(key);
            let found = find_marking(key)
                .map(|marking| Found { pointer: path.to_buf(), marking })
                .or_else(|| walk(item, path, skip));
            path.back(back);
            found
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_the_markings_of_the_examples() {
        assert_eq!(
            find_marking("附：秘密★5年 关于联合开展专项行动的部署意见（略）"),
            Some(Marking { level: "秘密", offset: 2 })
        );
        assert_eq!(find_marking("机密★10年").map(|m| m.level), Some("机密"));
        assert_eq!(find_marking("本件绝密★").map(|m| m.level), Some("绝密"));
        assert_eq!(find_marking("机密 ★ 长期").map(|m| m.level), Some("机密"));
        assert_eq!(find_marking("机密\u{3000}★").map(|m| m.level), Some("机密"));
        assert_eq!(find_marking("机\u{200B}密☆6个月").map(|m| m.level), Some("机密"));
        assert_eq!(find_marking("秘密＊").map(|m| m.level), Some("秘密"));
    }

    #[test]
    fn ignores_level_names_without_a_star_and_lower_levels() {
        assert_eq!(find_marking("侵犯商业秘密罪"), None);
        assert_eq!(find_marking("本案不涉及国家秘密。"), None);
        assert_eq!(find_marking("工作秘密★"), None);
        assert_eq!(find_marking("内部★"), None);
        assert_eq!(find_marking("★★★ 五星好评"), None);
    }

    #[test]
    fn scans_nested_values_and_keys_and_honours_skips() {
        let doc = json!({"a": {"b": ["ok", "x 绝密★ y"]}, "c": "fine"});
        let found = scan(&doc, &|_| false).unwrap();
        assert_eq!(found.pointer.as_str(), "/a/b/1");
        assert!(scan(&doc, &|p| p.as_str() == "/a/b/1").is_none());
        let key = json!({"机密★": 1});
        assert_eq!(scan(&key, &|_| false).unwrap().pointer.as_str(), "/机密★");
    }

    fn level() -> impl Strategy<Value = &'static str> {
        prop::sample::select(LEVEL_NAMES.to_vec())
    }

    fn star() -> impl Strategy<Value = char> {
        prop::sample::select(vec!['★', '☆', '＊', '*'])
    }

    fn gap() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec![' ', '\u{3000}', '\u{200B}', '\t', '\u{FEFF}']), 0..3)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn a_marking_anywhere_is_found(prefix in ".{0,40}", suffix in ".{0,40}", name in level(), s in star(), g in gap()) {
            let text = format!("{prefix}{name}{g}{s}{suffix}");
            prop_assert!(find_marking(&text).is_some(), "missed a marking in {:?}", text);
        }

        #[test]
        fn text_without_a_star_is_never_flagged(text in "[^★☆＊*]{0,80}") {
            prop_assert_eq!(find_marking(&text), None);
        }

        #[test]
        fn a_star_after_other_words_is_not_a_marking(a in "[a-z一-龥]{0,10}", s in star()) {
            let text = format!("{a}{s}");
            let expected = LEVEL_NAMES.iter().any(|n| a.ends_with(n)) && !a.ends_with("工作秘密");
            prop_assert_eq!(find_marking(&text).is_some(), expected);
        }
    }
}
