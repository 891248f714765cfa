//! The GB/T 2260 division table (`config/divisions.csv`: `code,name`), with each division's
//! level and superior as the brief defines them:
//!
//! - levels follow the code: national `000000`, provincial `XX0000`, prefecture `XXYY00`,
//!   county `XXYYZZ`;
//! - the superior is the parent division that exists in the table and is an authority: county →
//!   prefecture → province → national. Grouping rows (市辖区 under the municipalities, 500200 县,
//!   省直辖县级行政区划 …) are not authorities, so the superior of a Beijing district is 110000 and
//!   that of a province-administered county is its province.

use std::collections::HashMap;
use std::fmt;

use crate::model::Division;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    National,
    Province,
    Prefecture,
    County,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::National, Level::Province, Level::Prefecture, Level::County];

    /// The level named `name` (`national`, `province`, `prefecture`, `county`).
    pub fn named(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == name)
    }

    pub fn of(code: &Division) -> Level {
        let s = code.as_str();
        match (&s[0..2], &s[2..4], &s[4..6]) {
            ("00", "00", "00") => Level::National,
            (_, "00", "00") => Level::Province,
            (_, _, "00") => Level::Prefecture,
            _ => Level::County,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::National => "national",
            Level::Province => "province",
            Level::Prefecture => "prefecture",
            Level::County => "county",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names of the grouping rows that stand in the table without being authorities.
const GROUPING_NAMES: [&str; 4] = ["市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"];

#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub level: Level,
    /// A grouping row, not an authority: no agency sits there.
    pub grouping: bool,
}

/// The division table.
#[derive(Debug, Default)]
pub struct Divisions {
    entries: HashMap<Division, Entry>,
}

impl Divisions {
    /// Parses `code,name` lines (a header line is allowed). Errors name the line.
    pub fn parse(text: &str) -> Result<Divisions, Vec<(usize, String)>> {
        let mut entries = HashMap::new();
        entries.insert(Division::NATIONAL, Entry { name: "全国".into(), level: Level::National, grouping: false });
        let mut errors = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || (i == 0 && line.starts_with("code")) {
                continue;
            }
            let Some((code, name)) = line.split_once(',') else {
                errors.push((i + 1, "expected code,name".to_string()));
                continue;
            };
            match Division::parse(code.trim()) {
                Ok(d) => {
                    let level = Level::of(&d);
                    let name = name.trim().to_string();
                    let grouping = level == Level::Prefecture && GROUPING_NAMES.contains(&name.as_str());
                    if entries.insert(d, Entry { name, level, grouping }).is_some() && d != Division::NATIONAL {
                        errors.push((i + 1, format!("{d} is listed twice")));
                    }
                }
                Err(e) => errors.push((i + 1, e)),
            }
        }
        if errors.is_empty() { Ok(Divisions { entries }) } else { Err(errors) }
    }

    pub fn get(&self, code: &Division) -> Option<&Entry> {
        self.entries.get(code)
    }

    pub fn contains(&self, code: &Division) -> bool {
        self.entries.contains_key(code)
    }

    /// Whether some division's code starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.entries.keys().any(|d| d.as_str().starts_with(prefix))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many divisions of each level the table holds.
    pub fn count(&self, level: Level) -> usize {
        self.entries.values().filter(|e| e.level == level && !e.grouping).count()
    }

    /// The superior authority of `code`: the nearest parent in the table that is not a
    /// grouping row. `None` for national, and for codes not in the table.
    pub fn superior(&self, code: &Division) -> Option<Division> {
        let level = self.get(code)?.level;
        let s = code.as_str();
        let candidates = match level {
            Level::National => return None,
            Level::Province => vec![Division::NATIONAL],
            Level::Prefecture => vec![province_of(s), Division::NATIONAL],
            Level::County => {
                vec![Division::parse(&format!("{}00", &s[0..4])).ok()?, province_of(s), Division::NATIONAL]
            }
        };
        candidates.into_iter().find(|c| self.get(c).is_some_and(|e| !e.grouping))
    }

    /// The chain of superiors, nearest first, ending with national.
    pub fn superiors(&self, code: &Division) -> Vec<Division> {
        let mut chain = Vec::new();
        let mut current = *code;
        while let Some(up) = self.superior(&current) {
            chain.push(up);
            current = up;
        }
        chain
    }
}

/// The province (`XX0000`) a code lies in.
pub fn province_of(code: &str) -> Division {
    Division::parse(&format!("{}0000", &code[0..2])).unwrap_or(Division::NATIONAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Divisions {
        Divisions::parse(include_str!("../../config/divisions.csv")).expect("the shipped table parses")
    }

    fn d(s: &str) -> Division {
        Division::parse(s).unwrap()
    }

    #[test]
    fn the_shipped_table_is_complete() {
        let t = table();
        // 31 provinces plus Taiwan, Hong Kong and Macao; 2,975 county-level divisions.
        assert_eq!(t.count(Level::Province), 34);
        assert_eq!(t.count(Level::County), 2975);
        assert!(t.count(Level::Prefecture) > 330);
    }

    #[test]
    fn derives_superiors_as_the_brief_defines_them() {
        let t = table();
        assert_eq!(t.superior(&d("330106")), Some(d("330100"))); // 西湖区 → 杭州市
        assert_eq!(t.superior(&d("330100")), Some(d("330000"))); // 杭州市 → 浙江省
        assert_eq!(t.superior(&d("330000")), Some(Division::NATIONAL));
        assert_eq!(t.superior(&Division::NATIONAL), None);
        assert_eq!(t.superior(&d("110105")), Some(d("110000")), "a Beijing district reports to Beijing, not to 市辖区");
        assert_eq!(t.superior(&d("500229")), Some(d("500000")), "a Chongqing county skips the 县 grouping row");
        assert_eq!(t.superior(&d("429004")), Some(d("420000")), "仙桃市 is administered by Hubei province");
        assert_eq!(t.superior(&d("130171")), Some(d("130100")), "functional zones are kept, under their city");
        assert_eq!(t.superior(&d("441900")), Some(d("440000")), "东莞市 has no counties");
        assert_eq!(t.superiors(&d("440305")), [d("440300"), d("440000"), Division::NATIONAL]);
        assert_eq!(t.superior(&d("999999")), None);
    }

    #[test]
    fn knows_levels_and_grouping_rows() {
        let t = table();
        assert_eq!(t.get(&d("330106")).unwrap().level, Level::County);
        assert!(t.get(&d("110100")).unwrap().grouping);
        assert!(t.get(&d("500200")).unwrap().grouping);
        assert!(!t.get(&d("441900")).unwrap().grouping);
        assert!(!t.contains(&d("330199")));
    }

    #[test]
    fn reports_bad_lines() {
        let errors = Divisions::parse("code,name\n330100,杭州市\n33010,x\nnoname\n330100,again\n").unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.0).collect();
        assert_eq!(lines, [3, 4, 5]);
    }
}
