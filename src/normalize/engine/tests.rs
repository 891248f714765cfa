use jsonptr::PointerBuf;
use serde_json::json;

use super::*;
use crate::model::schema::Schemas;
use crate::normalize::SpecError;

fn schemas() -> Schemas {
    Schemas::load().expect("schemas compile")
}

const SPEC: &str = r#"
format: test-format
envelope:
  id: { from: /id, required: true, convert: string }
  type: { from: /kind, required: true }
  sender: { from: /from/code, required: true, convert: division }
  sender_name: { from: /from/name }
  sent_at: { from: /at, required: true, convert: beijing_datetime }
  classification: { from: /level, default: 内部, convert: classification }
types:
  T1: cn.xietong.bulletin
markings:
  fields: { from: /marks, shape: path_map }
  items:
    - { from: /files, level: /lvl }
fields:
  - { to: /content, from: /text, required: true }
  - { to: /case/amountYuan, from: /amount, convert: yuan }
  - to: /parties
    from: /people
    each:
      - { to: /kind, from: /t, map: { 个人: person, 单位: organisation } }
      - { to: /name, from: [/xm, /mc] }
      - { to: /residentId, from: /id, when: { path: /t, equals: 个人 } }
      - { to: /creditCode, from: /id, when: { path: /t, equals: 单位 } }
  - to: /attachments
    from: /files
    each:
      - { to: /fileName, from: /name }
      - { to: /classification, from: /lvl, convert: classification }
  - { to: /outcome/cannotDetermine, from: /result, map: { 无法认定: true, "*": false } }
  - { to: /outcome/result, from: /result }
"#;

fn mapping() -> Mapping {
    Mapping::from_yaml(SPEC, &schemas()).unwrap_or_else(|e| panic!("spec compiles: {e:?}"))
}

fn message() -> Value {
    json!({
        "id": 42, "kind": "T1", "from": {"code": "330100", "name": "杭州"}, "at": "2026-11-20 14:03:22",
        "text": "hello", "amount": "1,000.50",
        "people": [{"t": "个人", "xm": "王建国", "id": "330102198503124031"}, {"t": "单位", "mc": "某公司", "id": "91330100MA27XK3Q0E"}],
        "files": [{"name": "a.pdf", "lvl": "内部"}, {"name": "b.pdf", "lvl": "秘密"}],
        "result": "无法认定",
        "marks": {"people/0/id": "工作秘密"},
        "surprise": {"nested": [1, 2]}
    })
}

#[test]
fn maps_envelope_fields_and_nested_arrays() {
    let mapped = mapping().map(&message()).expect("maps");
    let e = &mapped.envelope;
    assert_eq!(e.native_id, "42");
    assert_eq!(e.message_type.name, "cn.xietong.bulletin");
    assert_eq!(e.sender, SenderRef::Division(Division::parse("330100").unwrap()));
    assert_eq!(e.sent_at, "2026-11-20T14:03:22+08:00");
    assert_eq!(e.classification, Level::Internal);
    let d = &mapped.data;
    assert_eq!(d["sender"]["name"], "杭州");
    assert_eq!(d["case"]["amountYuan"], json!(1000.5));
    assert_eq!(d["parties"][0], json!({"kind": "person", "name": "王建国", "residentId": "330102198503124031"}));
    assert_eq!(d["parties"][1], json!({"kind": "organisation", "name": "某公司", "creditCode": "91330100MA27XK3Q0E"}));
    assert_eq!(d["outcome"], json!({"cannotDetermine": true, "result": "无法认定"}));
}

#[test]
fn unread_fields_go_to_extra_and_markings_do_not() {
    let mapped = mapping().map(&message()).unwrap();
    assert_eq!(mapped.data["extra"], json!({"/surprise": {"nested": [1, 2]}}));
}

#[test]
fn a_partly_read_object_keeps_its_unread_members() {
    let mut m = message();
    m["people"][0]["nickname"] = json!("小王");
    let mapped = mapping().map(&m).unwrap();
    assert_eq!(mapped.data["extra"]["/people/0/nickname"], "小王");
}

#[test]
fn provenance_translates_native_pointers_to_event_pointers() {
    let mapped = mapping().map(&message()).unwrap();
    let t =
        |p: &str| mapped.targets_of(&PointerBuf::parse(p).unwrap()).iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(t("/files/1"), ["/data/attachments/1"]);
    assert_eq!(t("/people/0/id"), ["/data/parties/0/residentId"]);
    // A guard field decides which member exists: marking it removes what it chose, and the
    // enumeration it fed.
    assert_eq!(t("/people/0/t"), ["/data/parties/0/kind", "/data/parties/0/residentId"]);
    assert_eq!(t("/result"), ["/data/outcome/cannotDetermine", "/data/outcome/result"]);
    assert_eq!(t("/surprise/nested/1"), ["/data/extra/~1surprise/nested/1"]);
    assert_eq!(t("/at"), ["/time"]);
    assert_eq!(t("/from/name"), ["/data/sender/name"]);
    // A converted value is removed whole.
    assert_eq!(t("/amount"), ["/data/case/amountYuan"]);
}

#[test]
fn reads_markings_from_path_maps_and_items() {
    let found = mapping().markings(&message()).unwrap();
    let got: Vec<(String, Level)> = found.markings.iter().map(|m| (m.source.to_string(), m.level)).collect();
    assert_eq!(
        got,
        [
            ("/people/0/id".to_string(), Level::WorkSecret),
            ("/files/0".into(), Level::Internal),
            ("/files/1".into(), Level::Secret)
        ]
    );
    let meta: Vec<String> = found.metadata.iter().map(|p| p.to_string()).collect();
    assert_eq!(meta, ["/marks", "/files/0/lvl", "/files/1/lvl"]);
}

#[test]
fn a_marking_that_points_at_nothing_is_refused() {
    let mut m = message();
    m["marks"] = json!({"people/0/sfzh": "秘密"});
    let errors = mapping().markings(&m).unwrap_err();
    assert_eq!(errors[0].pointer, "/marks/people~10~1sfzh");
    assert!(errors[0].reason.contains("no such field"), "{errors:?}");
    m["marks"] = json!({"text": "保密"});
    assert!(mapping().markings(&m).unwrap_err()[0].reason.contains("expected a level"));
}

#[test]
fn reports_every_mapping_error_with_its_pointer() {
    let mut m = message();
    m["at"] = json!("2026/11/20");
    m["amount"] = json!("1,00");
    m["people"][1]["t"] = json!("法人");
    m.as_object_mut().unwrap().remove("text");
    let err = mapping().map(&m).unwrap_err();
    assert_eq!(err.code, Code::MappingFailed);
    let pointers: Vec<&str> = err.details.iter().map(|d| d.pointer.as_str()).collect();
    assert_eq!(pointers, ["/at", "/text", "/amount", "/people/1/t"]);
    assert!(err.details.iter().all(|d| !d.reason.contains("法人")), "values are not echoed: {:?}", err.details);
}

#[test]
fn unknown_native_types_have_their_own_code() {
    let mut m = message();
    m["kind"] = json!("NOPE");
    let err = mapping().map(&m).unwrap_err();
    assert_eq!(err.code, Code::UnknownMessageType);
    assert_eq!(err.details[0].pointer, "/kind");
    assert!(err.details[0].reason.contains("T1"));
}

#[test]
fn reads_the_classification_first() {
    let mut m = message();
    m["level"] = json!("机密★10年");
    assert_eq!(mapping().classification(&m), Ok((Level::Confidential, Some(PointerBuf::parse("/level").unwrap()))));
    m["level"] = json!("top");
    assert!(mapping().classification(&m).is_err());
}

fn compile_errors(spec: &str) -> Vec<SpecError> {
    Mapping::from_yaml(spec, &schemas()).expect_err("spec should be refused")
}

#[test]
fn refuses_bad_specs_with_positions() {
    let bad = SPEC.replace("- { to: /content, from: /text, required: true }", "- { to: /contnet, from: /text }");
    let errors = compile_errors(&bad);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("`/contnet` is not a field"), "{errors:?}");
    assert_eq!(errors[0].line, Some(17));

    let errors = compile_errors(&SPEC.replace("cn.xietong.bulletin", "cn.xietong.gossip"));
    assert!(errors[0].message.contains("unknown canonical type"), "{errors:?}");

    let errors = compile_errors(&SPEC.replace("convert: yuan", "convert: money"));
    assert!(errors[0].message.contains("money"), "{errors:?}");
    assert_eq!(errors[0].line, Some(18));

    let errors = compile_errors(&SPEC.replace("from: /text, required: true", "from: text"));
    assert!(errors[0].message.contains("not a JSON pointer"), "{errors:?}");

    let errors = compile_errors(&SPEC.replace("{ to: /name, from: [/xm, /mc] }", "{ to: /kind, from: /xm }"));
    assert!(errors[0].message.contains("already the target"), "{errors:?}");

    let errors = compile_errors(&SPEC.replace("  - to: /parties\n", "  - to: /content\n"));
    assert!(errors.iter().any(|e| e.message.contains("`each` needs an array")), "{errors:?}");

    let errors = compile_errors(&SPEC.replace("{ from: /from/name }", "{ from: /from/name, colour: red }"));
    assert!(errors[0].message.contains("unknown field `colour`"), "{errors:?}");
    assert_eq!((errors[0].line, errors[0].column), (Some(7), Some(36)));
}

#[test]
fn the_ancestors_of_the_reads_are_cut_at_token_boundaries_only() {
    let reads: HashSet<PointerBuf> =
        ["/a/b/c", "/a/x", "/p~1q/r", "/top", "/a/b/d"].iter().map(|p| PointerBuf::parse(*p).unwrap()).collect();
    let mut found: Vec<&str> = ancestors(&reads).into_iter().collect();
    found.sort_unstable();
    // "/p~1q" is one token (a key holding a slash): not cut into "/p".
    assert_eq!(found, ["/a", "/a/b", "/p~1q"]);
}
