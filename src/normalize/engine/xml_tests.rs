//! The rule forms for exports converted from XML: one-or-many lists, joined fields, dates in a
//! named pattern, amounts with units, codes for levels, attributes and text nodes.

use std::sync::LazyLock;

use jsonptr::PointerBuf;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::model::schema::Schemas;
use crate::normalize::SpecError;

const SPEC: &str = r##"
format: xml-export
envelope:
  id: { from: /Msg/Head/ID, required: true, convert: text }
  type: { from: /Msg/Head/Type, required: true, convert: text }
  sender: { from: /Msg/Head/Unit/@code, required: true, convert: division }
  sender_name: { from: /Msg/Head/Unit/#text, convert: text }
  sent_at:
    join: [/Msg/Head/Date, /Msg/Head/Time]
    separator: " "
    required: true
    convert: beijing_datetime
    pattern: ["%Y年%m月%d日 %H时%M分%S秒", "%Y年%m月%d日 %H时%M分"]
  classification: { from: /Msg/Head/MJ, default: 内部, convert: classification }
types:
  "01": cn.xietong.clue.decision
level_codes: { "0": 非密, "1": 秘密, "2": 机密, "3": 绝密, "9": 工作秘密 }
markings:
  fields: { from: /Msg/Marks/Mark, shape: pointer_list, path: /@path, level: /@level, one_or_many: true }
  items:
    - { from: /Msg/Files/File, level: /@mj, one_or_many: true }
fields:
  - { to: /case/number, from: /Msg/Case/No, convert: text }
  - { to: /case/amountYuan, from: /Msg/Case/Amount, convert: yuan }
  - { to: /case/divisions, from: /Msg/Case/Areas/Area, one_or_many: true, convert: divisions }
  - { to: /decision/type, from: /Msg/Decision/Type, required: true }
  - { to: /decision/date, from: /Msg/Decision/Date, convert: date, pattern: "%Y%m%d" }
  - to: /parties
    from: /Msg/Suspects/Suspect
    one_or_many: true
    each:
      - { to: /kind, from: /@type, map: { "1": person, "2": organisation } }
      - { to: /name, from: /Name, convert: text }
      - { to: /residentId, join: [/IdType, /IdNo], separator: ":", when: { path: /IdType, equals: "111" } }
  - to: /attachments
    from: /Msg/Files/File
    one_or_many: true
    each:
      - { to: /fileName, from: /#text }
      - { to: /classification, from: /@mj, convert: classification }
"##;

/// Compiled once: loading the schemas takes most of a case's time.
static MAPPING: LazyLock<Mapping> = LazyLock::new(|| {
    Mapping::from_yaml(SPEC, &Schemas::load().unwrap()).unwrap_or_else(|e| panic!("spec compiles: {e:?}"))
});

fn mapping() -> &'static Mapping {
    &MAPPING
}

fn message() -> Value {
    json!({"Msg": {
        "Head": {"ID": " JZ-0001 ", "Type": "01", "Unit": {"@code": "330200", "#text": " 宁波市公安局 "},
                 "Date": "２０２５年３月７日", "Time": "9时30分", "MJ": "0"},
        "Case": {"No": "甬市监〔2025〕7号", "Amount": "86万元", "Areas": {"Area": "330203"}},
        "Decision": {"Type": "立案侦查", "Date": "20250307"},
        "Suspects": {"Suspect": {"@type": "1", "Name": "李明", "IdType": "111", "IdNo": "330203198001011234"}},
        "Files": {"File": {"@mj": "0", "#text": "立案决定书.pdf"}},
        "Marks": {"Mark": {"@path": "/Msg/Suspects/Suspect/IdNo", "@level": "9"}}
    }})
}

#[test]
fn a_single_member_maps_like_a_list_of_one() {
    let mapped = mapping().map(&message()).expect("maps");
    let e = &mapped.envelope;
    assert_eq!(e.native_id, "JZ-0001");
    assert_eq!(e.sent_at, "2025-03-07T09:30:00+08:00");
    assert_eq!(e.classification, Level::Internal);
    assert_eq!(e.sender, SenderRef::Division(Division::parse("330200").unwrap()));
    let d = &mapped.data;
    assert_eq!(d["sender"]["name"], "宁波市公安局");
    assert_eq!(d["case"], json!({"number": "甬市监〔2025〕7号", "amountYuan": 860000, "divisions": ["330203"]}));
    assert_eq!(d["decision"], json!({"type": "立案侦查", "date": "2025-03-07"}));
    assert_eq!(d["parties"], json!([{"kind": "person", "name": "李明", "residentId": "111:330203198001011234"}]));
    assert_eq!(d["attachments"], json!([{"fileName": "立案决定书.pdf", "classification": "内部"}]));
    assert!(d.get("extra").is_none(), "{:?}", d.get("extra"));

    let mut many = message();
    let suspect = many["Msg"]["Suspects"]["Suspect"].clone();
    many["Msg"]["Suspects"]["Suspect"] = json!([suspect.clone(), {"@type": "2", "Name": "某公司"}]);
    many["Msg"]["Case"]["Areas"]["Area"] = json!(["330203", "330205"]);
    many["Msg"]["Marks"]["Mark"]["@path"] = json!("/Msg/Suspects/Suspect/0/IdNo");
    let d = mapping().map(&many).expect("maps").data;
    assert_eq!(d["parties"][1], json!({"kind": "organisation", "name": "某公司"}));
    assert_eq!(d["case"]["divisions"], json!(["330203", "330205"]));
}

#[test]
fn markings_read_codes_and_single_entries() {
    let found = mapping().markings(&message()).expect("markings");
    let got: Vec<(String, Level)> = found.markings.iter().map(|m| (m.source.to_string(), m.level)).collect();
    assert_eq!(
        got,
        [("/Msg/Suspects/Suspect/IdNo".to_string(), Level::WorkSecret), ("/Msg/Files/File".into(), Level::Internal)]
    );
    // The marked field of a single suspect leads to the one party's joined value.
    let mapped = mapping().map(&message()).unwrap();
    let targets = mapped.targets_of(&PointerBuf::parse("/Msg/Suspects/Suspect/IdNo").unwrap());
    assert_eq!(targets, [PointerBuf::parse("/data/parties/0/residentId").unwrap()]);
    // A single item stands for the whole list in provenance: marking it removes the list.
    let targets = mapped.targets_of(&PointerBuf::parse("/Msg/Files/File").unwrap());
    assert_eq!(targets, [PointerBuf::parse("/data/attachments").unwrap()]);

    let mut secret = message();
    secret["Msg"]["Files"]["File"]["@mj"] = json!(1);
    let found = mapping().markings(&secret).unwrap();
    assert_eq!(found.markings[1].level, Level::Secret, "a numeric code is read like its text");
    secret["Msg"]["Files"]["File"]["@mj"] = json!("7");
    let errors = mapping().markings(&secret).unwrap_err();
    assert_eq!(errors[0].pointer, "/Msg/Files/File/@mj");
    assert!(!errors[0].reason.contains('7'), "{errors:?}");
}

#[test]
fn a_numeric_classification_code_is_read_like_the_level_it_stands_for() {
    for (code, level) in [
        ("0", Level::Internal),
        ("9", Level::WorkSecret),
        ("1", Level::Secret),
        ("2", Level::Confidential),
        ("3", Level::TopSecret),
    ] {
        let mut m = message();
        m["Msg"]["Head"]["MJ"] = json!(code);
        assert_eq!(mapping().classification(&m).unwrap().0, level, "code {code}");
        m["Msg"]["Head"]["MJ"] = json!(code.parse::<u8>().unwrap());
        assert_eq!(mapping().classification(&m).unwrap().0, level, "code {code} as a number");
    }
    let mut m = message();
    for word in ["机密", "机密★10年", " 秘密 "] {
        m["Msg"]["Head"]["MJ"] = json!(word);
        assert!(mapping().classification(&m).unwrap().0.is_state_secret(), "{word}");
    }
    m["Msg"]["Head"]["MJ"] = json!("5");
    let errors = mapping().classification(&m).unwrap_err();
    assert_eq!(errors[0].pointer, "/Msg/Head/MJ");
}

#[test]
fn joined_and_patterned_values_are_refused_with_pointers() {
    let mut m = message();
    m["Msg"]["Head"]["Time"] = json!("9:30");
    m["Msg"]["Decision"]["Date"] = json!("2025-03-07");
    m["Msg"]["Case"]["Amount"] = json!("86万美元");
    m["Msg"]["Suspects"]["Suspect"].as_object_mut().unwrap().remove("IdNo");
    let err = mapping().map(&m).unwrap_err();
    let got: Vec<(&str, &str)> = err.details.iter().map(|d| (d.pointer.as_str(), d.reason.as_str())).collect();
    assert_eq!(got[0].0, "/Msg/Head/Date");
    assert!(got[0].1.contains("`%Y年%m月%d日 %H时%M分%S秒` or `%Y年%m月%d日 %H时%M分`"), "{got:?}");
    assert!(got[0].1.contains("joined from /Msg/Head/Date, /Msg/Head/Time"), "{got:?}");
    assert_eq!(got[1], ("/Msg/Case/Amount", crate::normalize::convert::YUAN_EXPECTED));
    assert_eq!(got[2], ("/Msg/Decision/Date", "expected a date in the pattern `%Y%m%d`"));
    assert_eq!(got[3].0, "/Msg/Suspects/Suspect/IdNo");
    assert!(got[3].1.contains("joins it with /Msg/Suspects/Suspect/IdType"), "{got:?}");
    assert!(err.details.iter().all(|d| !d.reason.contains("9:30") && !d.reason.contains("美元")));
}

fn errors(spec: &str) -> Vec<SpecError> {
    Mapping::from_yaml(spec, &Schemas::load().unwrap()).expect_err("spec should be refused")
}

#[test]
fn check_refuses_misused_forms_at_their_line() {
    let line_of = |needle: &str| SPEC.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1;
    let e = errors(&SPEC.replace(r#"pattern: "%Y%m%d""#, r#"pattern: "%Y%m""#));
    assert!(e[0].message.contains("does not read a whole day"), "{e:?}");
    assert_eq!(e[0].line, Some(line_of("/Msg/Decision/Date")));

    let e = errors(&SPEC.replace("from: /Msg/Case/No, convert: text", "from: /Msg/Case/No, one_or_many: true"));
    assert!(e[0].message.contains("`one_or_many` needs a list target"), "{e:?}");
    assert_eq!(e[0].line, Some(line_of("/Msg/Case/No")));

    let e = errors(&SPEC.replace("convert: yuan", "convert: yuan, pattern: \"%Y\""));
    assert!(e[0].message.contains("`pattern` goes with"), "{e:?}");

    let e = errors(&SPEC.replace("join: [/IdType, /IdNo]", "join: [/IdNo]"));
    assert!(e[0].message.contains("two or more"), "{e:?}");

    let e = errors(&SPEC.replace("\"9\": 工作秘密 }", "\"9\": 工作机密 }"));
    assert!(e[0].message.contains("`工作机密` is not a level"), "{e:?}");
    assert_eq!(e[0].line, Some(line_of("level_codes:")));

    let e =
        errors(&SPEC.replace("{ to: /fileName, from: /#text }", "{ to: /fileName, from: /#text, separator: \"-\" }"));
    assert!(e[0].message.contains("`separator` goes with `join`"), "{e:?}");

    let e = errors(&SPEC.replace("id: { from: /Msg/Head/ID,", "id: { one_or_many: true, from: /Msg/Head/ID,"));
    assert!(e[0].message.contains("envelope.id is one value"), "{e:?}");
}

#[test]
fn codes_map_in_the_envelope_too() {
    let spec = SPEC.replace(
        "type: { from: /Msg/Head/Type, required: true, convert: text }",
        "type: { from: /Msg/Head/Type, required: true, map: { \"1\": \"01\" } }",
    );
    let mapping = Mapping::from_yaml(&spec, &Schemas::load().unwrap()).unwrap();
    let mut m = message();
    m["Msg"]["Head"]["Type"] = json!(1);
    assert_eq!(mapping.map(&m).unwrap().envelope.message_type.name, "cn.xietong.clue.decision");
    m["Msg"]["Head"]["Type"] = json!(2);
    let err = mapping.map(&m).unwrap_err();
    assert_eq!(err.details[0].pointer, "/Msg/Head/Type");
    assert!(err.details[0].reason.contains("expected one of 1"), "{:?}", err.details);
}

proptest! {
    /// However a level code is written (text or number, padded, full-width), it is read as the
    /// level it stands for, and a state-secret code is a state secret.
    #[test]
    fn level_codes_read_alike_however_written(code in prop::sample::select(vec![0u8, 1, 2, 3, 9]), form in 0u8..4) {
        let written = match form {
            0 => json!(code.to_string()),
            1 => json!(code),
            2 => json!(format!(" {code}\u{3000}")),
            _ => json!(char::from_u32(0xFF10 + u32::from(code)).unwrap().to_string()),
        };
        let mut m = message();
        m["Msg"]["Head"]["MJ"] = written;
        let level = mapping().classification(&m).unwrap().0;
        let expected = match code { 0 => Level::Internal, 9 => Level::WorkSecret, 1 => Level::Secret, 2 => Level::Confidential, _ => Level::TopSecret };
        prop_assert_eq!(level, expected);
        prop_assert_eq!(level.is_state_secret(), matches!(code, 1..=3));
    }

    /// XML converted to JSON writes a repeated element with one member as that member: the
    /// mapping gives the same data either way.
    #[test]
    fn one_member_or_a_list_of_one_map_alike(name in "[\\p{Han}]{1,6}", id in "[0-9]{17}[0-9X]", area in "33[0-9]{4}") {
        let suspect = json!({"@type": "1", "Name": name, "IdType": "111", "IdNo": id});
        let mut single = message();
        single["Msg"]["Suspects"]["Suspect"] = suspect.clone();
        single["Msg"]["Case"]["Areas"]["Area"] = json!(area);
        single["Msg"].as_object_mut().unwrap().remove("Marks");
        let mut listed = single.clone();
        listed["Msg"]["Suspects"]["Suspect"] = json!([suspect]);
        listed["Msg"]["Case"]["Areas"]["Area"] = json!([area]);
        let a = mapping().map(&single);
        let b = mapping().map(&listed);
        match (a, b) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a.data, b.data),
            (Err(a), Err(b)) => prop_assert_eq!(a.details.len(), b.details.len()),
            (a, b) => prop_assert!(false, "one mapped, the other did not: {:?} / {:?}", a.is_ok(), b.is_ok()),
        }
    }

    /// A date and a time in separate fields, joined and read in the pattern, give the instant
    /// they name.
    #[test]
    fn a_date_and_a_time_join_into_their_instant(secs in 0i64..4_102_444_800) {
        let t = chrono::DateTime::from_timestamp(secs - secs % 60, 0).unwrap().with_timezone(&crate::clock::beijing());
        let mut m = message();
        m["Msg"]["Head"]["Date"] = json!(t.format("%Y年%-m月%-d日").to_string());
        m["Msg"]["Head"]["Time"] = json!(t.format("%-H时%M分").to_string());
        let mapped = mapping().map(&m).unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(&mapped.envelope.sent_at).unwrap();
        prop_assert_eq!(at.timestamp(), t.timestamp());
    }

    /// Whatever single-or-list shape and codes a message has, mapping never panics.
    #[test]
    fn never_panics_on_any_shape(suspects in prop::collection::vec(any::<u8>(), 0..4), single: bool, code in 0u8..12) {
        let mut m = message();
        let list: Vec<Value> = suspects.iter().map(|c| json!({"@type": c.to_string(), "Name": "x"})).collect();
        m["Msg"]["Suspects"]["Suspect"] = if single && !list.is_empty() { list[0].clone() } else { Value::Array(list) };
        m["Msg"]["Head"]["MJ"] = json!(code);
        let _ = mapping().map(&m);
        let _ = mapping().markings(&m);
        let _ = mapping().classification(&m);
    }
}
