//! Anonymisation for the public feed: the public copy carries no personal data of anyone.
//!
//! - Parties that are natural persons: the name becomes surname + 某 (王建国 → 王某), also where it
//!   recurs in free text; the resident ID number is removed.
//! - Anyone else named in free text: a surname before a title (张警官, 李建国律师 → 某警官, 某律师),
//!   a name after a role word (联系人王芳 → 联系人某某).
//! - Numbers: mobile and landline numbers however written (138-1234-5678, 138 1234 5678,
//!   +86 138…, 0571-87654321, full-width digits), and any run of 11 or more digits (resident ID
//!   numbers, bank cards) unless it follows a Latin letter (a document or patent number).
//! - E-mail addresses and street addresses (文三路478号, 3幢2单元501室).
//! - What the operators add in `routing.anonymise.patterns` (xietong.yaml), masked wherever it
//!   matches; the titles and role words are configurable there too.
//!
//! Unmapped native fields (`extra`), which no one has reviewed, are dropped.

use jsonptr::PointerBuf;
use regex::Regex;
use serde_json::Value;

use super::strip;

/// Two-character surnames (复姓) that keep both characters.
const COMPOUND_SURNAMES: [&str; 20] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "令狐", "夏侯",
    "轩辕", "端木", "独孤", "南宫", "西门", "百里",
];

/// Single-character surnames: the hundred most common (over 85% of people), and more.
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝";

/// Titles after which a surname (and given name) is a person's: 张警官, 李建国律师.
pub const TITLES: [&str; 22] = [
    "警官",
    "先生",
    "女士",
    "小姐",
    "律师",
    "法官",
    "检察官",
    "书记员",
    "经理",
    "老板",
    "师傅",
    "同志",
    "医生",
    "老师",
    "主任",
    "科长",
    "处长",
    "局长",
    "所长",
    "队长",
    "总经理",
    "董事长",
];

/// Role words before which a name is a person's: 联系人王芳, 证人：李明.
pub const ROLES: [&str; 16] = [
    "联系人",
    "举报人",
    "投诉人",
    "证人",
    "当事人",
    "犯罪嫌疑人",
    "嫌疑人",
    "被告人",
    "被害人",
    "被申请人",
    "申请人",
    "法定代表人",
    "负责人",
    "经办人",
    "代理人",
    "承办人",
];

const MASK: &str = "××××";

/// Numbers that identify a person, in ASCII or full-width digits: any run of 11 or more digits
/// (with a trailing X for ID numbers; first, so that an ID number starting 13… is masked whole),
/// a mobile number with any separators and an optional +86, a landline with its area code.
const NUMBER_PATTERN: &str = r"[0-9０-９]{11,}[XxＸｘ]?|(?:[+＋]?(?:86|８６)[\s\-－]*)?[1１][3-9３-９][0-9０-９](?:[\s\-－]*[0-9０-９]){8}|[0０][0-9０-９]{2,3}[\-－\s][0-9０-９]{7,8}";

const EMAIL_PATTERN: &str = r"[A-Za-z0-9._%+\-]+[@＠][A-Za-z0-9.\-]+\.[A-Za-z]{2,}";

/// A street address down to the house number, and building, unit and room numbers.
const ADDRESS_PATTERN: &str = r"[\p{Han}A-Za-z]{1,4}?(?:路|街|大道|大街|巷|弄|胡同)[0-9０-９一二三四五六七八九十百零〇]+号(?:[0-9０-９]+(?:号楼|栋|幢|座|单元|层|楼|室))*|[0-9０-９]+(?:号楼|栋|幢)(?:[0-9０-９]+(?:单元|层|室))*|[0-9０-９]{3,4}室";

/// How the public copy is anonymised: the built-in rules, with the titles, role words and extra
/// patterns the operators configure.
#[derive(Clone, Debug)]
pub struct Masking {
    numbers: Regex,
    emails: Regex,
    addresses: Regex,
    titled: Regex,
    roled: Regex,
    extra: Vec<Regex>,
}

impl Default for Masking {
    fn default() -> Self {
        let titles: Vec<String> = TITLES.iter().map(|t| t.to_string()).collect();
        let roles: Vec<String> = ROLES.iter().map(|r| r.to_string()).collect();
        Masking::new(&titles, &roles, &[]).expect("the built-in patterns are valid")
    }
}

impl Masking {
    /// The masking with these titles and role words, and the extra `patterns` (regular
    /// expressions); an error names the first pattern that is not valid.
    pub fn new(titles: &[String], roles: &[String], patterns: &[String]) -> Result<Masking, String> {
        let alternatives = |words: &[String]| {
            let mut sorted: Vec<&String> = words.iter().filter(|w| !w.is_empty()).collect();
            // Longer first: 总经理 before 经理.
            sorted.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
            sorted.iter().map(|w| regex::escape(w)).collect::<Vec<_>>().join("|")
        };
        let surname = format!("(?:{}|[{SURNAMES}])", COMPOUND_SURNAMES.join("|"));
        let titled = match alternatives(titles) {
            t if t.is_empty() => "(?!)".to_string(),
            t => format!("{surname}\\p{{Han}}{{0,2}}?(?P<title>{t})"),
        };
        let roled = match alternatives(roles) {
            r if r.is_empty() => "(?!)".to_string(),
            r => format!("(?P<role>{r})(?P<sep>[:：]?\\s*){surname}\\p{{Han}}{{1,2}}"),
        };
        let compile = |p: &str| Regex::new(p).map_err(|e| e.to_string());
        let extra = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| Regex::new(p).map_err(|e| format!("patterns[{i}]: not a regular expression: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Masking {
            numbers: compile(NUMBER_PATTERN)?,
            emails: compile(EMAIL_PATTERN)?,
            addresses: compile(ADDRESS_PATTERN)?,
            titled: compile(&titled)?,
            roled: compile(&roled)?,
            extra,
        })
    }

    /// `text` with everything personal masked (`None` when nothing was).
    fn text(&self, text: &str, names: &[(String, String)]) -> Option<String> {
        let mut out = text.to_string();
        for (name, masked) in names {
            if out.contains(name.as_str()) {
                out = out.replace(name.as_str(), masked);
            }
        }
        out = self.titled.replace_all(&out, "某$title").into_owned();
        // A name is taken as up to two given characters: a third character of the text after a
        // two-character name may go with it (the public copy errs on the side of masking).
        out = self.roled.replace_all(&out, "${role}${sep}某某").into_owned();
        let source = out.clone();
        out = self
            .numbers
            .replace_all(&source, |c: &regex::Captures<'_>| {
                let m = c.get(0).map_or(0..0, |m| m.range());
                let after_letter = source[..m.start].chars().next_back().is_some_and(|ch| ch.is_ascii_alphabetic());
                if after_letter { c[0].to_string() } else { MASK.to_string() }
            })
            .into_owned();
        out = self.emails.replace_all(&out, MASK).into_owned();
        out = self.addresses.replace_all(&out, MASK).into_owned();
        for pattern in &self.extra {
            out = pattern.replace_all(&out, MASK).into_owned();
        }
        (out != text).then_some(out)
    }
}

/// The masked form of a person's name.
pub fn masked_name(name: &str) -> String {
    let surname: String = match COMPOUND_SURNAMES.iter().find(|s| name.starts_with(*s)) {
        Some(s) if name.chars().count() > 2 => (*s).to_string(),
        _ => name.chars().take(1).collect(),
    };
    format!("{surname}某")
}

/// Anonymises `event` in place; returns the pointers of what changed or was removed.
pub fn mask_personal_data(event: &mut Value, masking: &Masking) -> Vec<String> {
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
        walk(data, &mut path, masking, &names, &mut changed);
    }
    changed.sort();
    changed.dedup();
    changed
}

fn walk(
    value: &mut Value,
    path: &mut PointerBuf,
    masking: &Masking,
    names: &[(String, String)],
    changed: &mut Vec<String>,
) {
    match value {
        Value::String(s) => {
            if let Some(masked) = masking.text(s, names) {
                *s = masked;
                changed.push(path.to_string());
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push_back(i);
                walk(item, path, masking, names, changed);
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
                walk(v, path, masking, names, changed);
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

    /// The built-in masking, compiled once for all the cases.
    static BUILT_IN: std::sync::LazyLock<Masking> = std::sync::LazyLock::new(Masking::default);

    fn mask(e: &mut Value) -> Vec<String> {
        mask_personal_data(e, &BUILT_IN)
    }

    fn masked_text(text: &str) -> String {
        let mut e = json!({"data": {"content": text, "redactions": [], "classifiedFields": []}});
        mask(&mut e);
        e["data"]["content"].as_str().unwrap().to_string()
    }

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
        let changed = mask(&mut e);
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

    /// What issue 15 found passing to the public feed.
    #[test]
    fn people_who_are_not_parties_numbers_however_written_mail_and_addresses() {
        let cases = [
            ("现场由张警官带队", "现场由某警官带队"),
            ("经李建国律师代理", "经某律师代理"),
            ("联系人王芳，负责对接", "联系人某某，负责对接"),
            ("联系人王建国负责", "联系人某某负责"),
            ("证人：赵敏，作证", "证人：某某，作证"),
            ("电话138-1234-5678", "电话××××"),
            ("电话138 1234 5678。", "电话××××。"),
            ("电话+86 138 1234 5678", "电话××××"),
            ("电话＋８６１３８１２３４５６７８", "电话××××"),
            ("手机１３８１２３４５６７８", "手机××××"),
            ("座机0571 87654321", "座机××××"),
            ("身份证130102198503124031", "身份证××××"),
            ("邮箱wang.jianguo@example.com联系", "邮箱××××联系"),
            ("住杭州市西湖区文三路478号", "住杭州市西××××"),
            ("住所3幢2单元501室", "住所××××"),
        ];
        for (text, expected) in cases {
            assert_eq!(masked_text(text), expected, "{text}");
        }
        assert_eq!(
            masked_text("专利ZL202110345678.3，案号〔2026〕123号，金额1250000元"),
            "专利ZL202110345678.3，案号〔2026〕123号，金额1250000元"
        );
    }

    #[test]
    fn configured_titles_roles_and_patterns_apply() {
        let masking = Masking::new(&["站长".into()], &["车主".into()], &["浙A[0-9A-Z]{5}".into()]).unwrap();
        let mut e = json!({"data": {"content": "周站长称车主孙立，驾驶浙A12B34离开", "redactions": [], "classifiedFields": []}});
        mask_personal_data(&mut e, &masking);
        assert_eq!(e["data"]["content"], "某站长称车主某某，驾驶××××离开");
        assert!(Masking::new(&[], &[], &["(".into()]).unwrap_err().starts_with("patterns[0]: "));
    }

    /// Text characters that are no surname, title, role or road word.
    fn filler() -> Vec<char> {
        "的了在是这有为以及对从与上下中个们来到地说就要出也得都而把着过然其所之将被让"
            .chars()
            .filter(|c| !SURNAMES.contains(*c))
            .collect()
    }

    /// Given-name characters that are no surname and not in the filler.
    fn given() -> Vec<char> {
        "伟芳娜敏静丽强磊洋艳勇杰娟涛超秀霞刚桂英玉兰".chars().filter(|c| !SURNAMES.contains(*c)).collect()
    }

    fn digits(n: usize, full_width: bool) -> impl Strategy<Value = String> {
        prop::collection::vec(0u32..10, n).prop_map(move |ds| {
            ds.into_iter()
                .map(
                    |d| if full_width { char::from_u32(0xFF10 + d).unwrap() } else { char::from_digit(d, 10).unwrap() },
                )
                .collect()
        })
    }

    /// One piece of personal data as people write it, and the part of it that must not survive.
    fn personal() -> impl Strategy<Value = (String, String)> {
        let surnames: Vec<char> = SURNAMES.chars().collect();
        let (given1, given2) = (given(), given());
        let phone =
            (3u32..10, digits(9, false), prop::sample::select(vec!["", "-", " ", "－"]), any::<bool>(), any::<bool>())
                .prop_map(|(second, rest, sep, plus86, wide)| {
                    let number = format!("1{second}{}", rest);
                    let written = format!("{}{}{}{}{}", &number[..3], sep, &number[3..7], sep, &number[7..]);
                    let written = if plus86 { format!("+86 {written}") } else { written };
                    let written = if wide {
                        written
                            .chars()
                            .map(|c| c.to_digit(10).map_or(c, |d| char::from_u32(0xFF10 + d).unwrap()))
                            .collect()
                    } else {
                        written
                    };
                    (written, number)
                });
        let landline = (digits(3, false), digits(8, false)).prop_map(|(area, n)| (format!("0{area}-{n}"), n));
        let id = (digits(17, false), any::<bool>()).prop_map(|(d, x)| {
            let id = format!("{d}{}", if x { "X" } else { "7" });
            (id.clone(), id)
        });
        let mail =
            ("[a-z]{3,8}", "[a-z]{3,8}").prop_map(|(user, host)| (format!("{user}@{host}.cn"), format!("{user}@")));
        let titled = (
            prop::sample::select(surnames.clone()),
            prop::sample::select(given1),
            prop::sample::select(TITLES.to_vec()),
        )
            .prop_map(|(s, g, t)| (format!("{s}{g}{t}"), format!("{s}{g}")));
        let roled =
            (prop::sample::select(ROLES.to_vec()), prop::sample::select(surnames), prop::sample::select(given2))
                .prop_map(|(r, s, g)| (format!("{r}{s}{g}"), format!("{s}{g}")));
        let address = (
            prop::sample::select(vec!["文三", "中山", "人民", "解放"]),
            1u32..2000,
            prop::sample::select(vec!["路", "街", "大道", "巷"]),
        )
            .prop_map(|(road, n, kind)| (format!("{road}{kind}{n}号"), format!("{n}号")));
        prop_oneof![phone, landline, id, mail, titled, roled, address]
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in ".{0,60}") {
            let mut e = json!({"data": {"content": text, "parties": [{"name": text}], "redactions": [], "classifiedFields": []}});
            mask(&mut e);
        }

        #[test]
        fn no_id_or_mobile_number_survives(prefix in "[一-龥]{0,6}", id_tail in 0u64..10u64.pow(9), mobile in 3u8..10, rest in 0u64..10u64.pow(9)) {
            let id = format!("330102199{:09}", id_tail);
            let phone = format!("1{mobile}{rest:09}");
            let mut e = json!({"data": {"content": format!("{prefix}{id}{prefix}{phone}"), "redactions": [], "classifiedFields": []}});
            mask(&mut e);
            let text = e["data"]["content"].as_str().unwrap();
            prop_assert!(!text.contains(&id) && !text.contains(&phone), "{}", text);
        }

        /// Generated text mixing filler and personal data of every kind: none of it survives, and
        /// since every digit written belongs to personal data, no digit does either.
        #[test]
        fn no_personal_data_survives_in_generated_text(
            pieces in prop::collection::vec((prop::collection::vec(prop::sample::select(filler()), 1..6), personal()), 1..6)
        ) {
            let mut text = String::new();
            for (fill, (written, _)) in &pieces {
                text.extend(fill.iter());
                text.push_str(written);
            }
            text.push('。');
            let out = masked_text(&text);
            for (_, (written, core)) in &pieces {
                prop_assert!(!out.contains(core.as_str()), "{written:?} left {core:?} in {out:?} (from {text:?})");
            }
            prop_assert!(!out.chars().any(|c| c.is_ascii_digit() || ('０'..='９').contains(&c)), "a digit survived: {out:?} (from {text:?})");
            prop_assert!(!out.contains('@'), "{out:?}");
        }
    }
}
