//! Anonymisation for the public feed: natural persons' names become surname + 某 (王建国 →
//! 王某), also where they recur in free text; resident ID numbers are removed from parties and
//! masked in text, as are mobile and landline numbers; unmapped native fields (`extra`), which
//! no one has reviewed, are dropped.

use std::sync::LazyLock;

use jsonptr::PointerBuf;
use regex::Regex;
use serde_json::Value;

use super::strip;

/// Two-character surnames (复姓) that keep both characters.
const COMPOUND_SURNAMES: [&str; 20] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "令狐", "夏侯",
    "轩辕", "端木", "独孤", "南宫", "西门", "百里",
];

const MASK: &str = "××××";

/// Landlines written with a hyphen, and runs of ASCII digits (with a trailing X for ID numbers).
/// The landline comes first: alternation is leftmost-first. ASCII only, so that every slice of a
/// match falls on a character boundary.
static NUMBERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"0[0-9]{2,3}-[0-9]{7,8}|(?:\+?86[- ]?)?[0-9]+[Xx]?").expect("a valid constant pattern")
});

/// The masked form of a person's name.
pub fn masked_name(name: &str) -> String {
    let surname: String = match COMPOUND_SURNAMES.iter().find(|s| name.starts_with(*s)) {
        Some(s) if name.chars().count() > 2 => (*s).to_string(),
        _ => name.chars().take(1).collect(),
    };
    format!("{surname}某")
}

/// Whether a run of digits is personal data. The public feed errs on the side of masking: any
/// run of 11 or more digits (resident ID numbers, mobile numbers, bank cards, several of them
/// run together) and any hyphenated landline. A run right after a Latin letter is a document
/// or patent number (`ZL202110345678.3`) and is kept.
fn is_personal_number(run: &str, after_letter: bool) -> bool {
    if run.starts_with('0') && run.contains('-') {
        return true;
    }
    let digits = run.bytes().filter(u8::is_ascii_digit).count();
    digits >= 11 && !after_letter
}

fn mask_text(text: &str, names: &[(String, String)]) -> Option<String> {
    let mut out = text.to_string();
    for (name, masked) in names {
        if out.contains(name.as_str()) {
            out = out.replace(name.as_str(), masked);
        }
    }
    let source = out.clone();
    out = NUMBERS
        .replace_all(&source, |c: &regex::Captures<'_>| {
            let m = c.get(0).map_or(0..0, |m| m.range());
            let after_letter = source[..m.start].chars().next_back().is_some_and(|ch| ch.is_ascii_alphabetic());
            if is_personal_number(&source[m], after_letter) { MASK.to_string() } else { c[0].to_string() }
        })
        .into_owned();
    (out != text).then_some(out)
}

/// Anonymises `event` in place; returns the pointers of what changed or was removed.
pub fn mask_personal_data(event: &mut Value) -> Vec<String> {
    let mut changed = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    if let Some(parties) = event.pointer_mut("/data/parties").and_then(Value::as_array_mut) {
        for (i, party) in parties.iter_mut().enumerate() {
            let Some(p) = party.as_object_mut() else { continue };
            // A party not known to be an organisation is treated as a natural person.
            if p.get("kind").and_then(Value::as_str) == Some("organisation") {
                continue;
            }
            if let Some(Value::String(name)) = p.get("name").cloned() {
                let masked = masked_name(&name);
                p.insert("name".into(), Value::String(masked.clone()));
                changed.push(format!("/data/parties/{i}/name"));
                names.push((name, masked));
            }
            if p.remove("residentId").is_some() {
                changed.push(format!("/data/parties/{i}/residentId"));
            }
        }
    }
    // Longer names first, so 王建国 is not half-replaced by a shorter 王建.
    names.sort_by_key(|(n, _)| std::cmp::Reverse(n.chars().count()));
    if let Ok(extra) = PointerBuf::parse("/data/extra")
        && strip::remove(event, &extra)
    {
        changed.push("/data/extra".into());
    }
    let mut path = PointerBuf::parse("/data").unwrap_or_default();
    if let Some(data) = event.get_mut("data") {
        walk(data, &mut path, &names, &mut changed);
    }
    changed.sort();
    changed.dedup();
    changed
}

fn walk(value: &mut Value, path: &mut PointerBuf, names: &[(String, String)], changed: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(masked) = mask_text(s, names) {
                *s = masked;
                changed.push(path.to_string());
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push_back(i);
                walk(item, path, names, changed);
                path.pop_back();
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                // The gateway's own metadata holds pointers and levels, not personal data.
                if matches!(k.as_str(), "redactions" | "classifiedFields" | "sender") {
                    continue;
                }
                path.push_back(k.as_str());
                walk(v, path, names, changed);
                path.pop_back();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn masks_names_where_they_recur_and_numbers() {
        let mut e = json!({"data": {
            "parties": [
                {"kind": "person", "name": "王建国", "residentId": "330102198503124031"},
                {"kind": "organisation", "name": "杭州某贸易有限公司", "creditCode": "91330100MA27XK3Q0E"},
                {"name": "欧阳修文"}
            ],
            "content": "王建国经营的杭州某贸易有限公司，电话13812345678，座机0571-87654321，身份证330102198503124031；欧阳修文协助。金额1250000元，案号〔2026〕123号，专利ZL202110345678.3。",
            "case": {"number": "杭市监知执〔2026〕123号", "name": "王建国销售侵权商品案"},
            "extra": {"/remark": "王建国的住址"},
            "redactions": [], "classifiedFields": [], "sender": {"id": "ip_office:330000", "name": "浙江省知识产权局"}
        }});
        let changed = mask_personal_data(&mut e);
        let d = &e["data"];
        assert_eq!(d["parties"][0], json!({"kind": "person", "name": "王某"}));
        assert_eq!(d["parties"][1]["name"], "杭州某贸易有限公司", "organisations keep their names");
        assert_eq!(d["parties"][2]["name"], "欧阳某", "a party of unknown kind is masked as a person");
        assert_eq!(
            d["content"],
            "王某经营的杭州某贸易有限公司，电话××××，座机××××，身份证××××；欧阳某协助。金额1250000元，案号〔2026〕123号，专利ZL202110345678.3。"
        );
        assert_eq!(d["case"]["name"], "王某销售侵权商品案");
        assert_eq!(d["case"]["number"], "杭市监知执〔2026〕123号");
        assert!(d.get("extra").is_none());
        assert!(changed.contains(&"/data/parties/0/residentId".to_string()));
        assert!(changed.contains(&"/data/content".to_string()));
        assert!(!changed.contains(&"/data/case/number".to_string()));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in ".{0,60}") {
            let mut e = json!({"data": {"content": text, "parties": [{"name": text}], "redactions": [], "classifiedFields": []}});
            mask_personal_data(&mut e);
        }

        #[test]
        fn no_id_or_mobile_number_survives(prefix in "[一-龥]{0,6}", id_tail in 0u64..10u64.pow(9), mobile in 3u8..10, rest in 0u64..10u64.pow(9)) {
            let id = format!("330102199{:09}", id_tail);
            let phone = format!("1{mobile}{rest:09}");
            let mut e = json!({"data": {"content": format!("{prefix}{id}{prefix}{phone}"), "redactions": [], "classifiedFields": []}});
            mask_personal_data(&mut e);
            let text = e["data"]["content"].as_str().unwrap();
            prop_assert!(!text.contains(&id) && !text.contains(&phone), "{}", text);
        }
    }
}
