//! Realistic native messages for load: clue transfers (线索移送) in the IP offices' format and
//! opinion requests (商请提供专业意见) in the procuratorates' format, from five agencies with
//! demo tokens, with varied case numbers and divisions, sizes chosen from a list, and a chosen
//! share of cross-region cases and of messages carrying a field marked 秘密 (removed before
//! storage). Every message has a fresh id, so the gateway stores each one.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// What to generate.
#[derive(Clone, Debug)]
pub struct Mix {
    /// Target body sizes in bytes; each message takes one at random.
    pub sizes: Vec<usize>,
    /// Share of messages from procuratorates (the rest from IP offices).
    pub procuratorate: f64,
    /// Share of cases touching another province of the sender's key region.
    pub cross_region: f64,
    /// Share of messages with an attachment classified 秘密, which the gateway removes.
    pub stripped: f64,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix { sizes: vec![1024], procuratorate: 0.3, cross_region: 0.2, stripped: 0.1 }
    }
}

/// A sending agency: its format, division, name, counties for local cases and divisions of
/// other provinces of its key region for cross-region ones.
struct Origin {
    procuratorate: bool,
    division: &'static str,
    name: &'static str,
    local: &'static [&'static str],
    cross: &'static [&'static str],
}

const IP_OFFICES: &[Origin] = &[
    Origin {
        procuratorate: false,
        division: "330100",
        name: "杭州市市场监督管理局（杭州市知识产权局）",
        local: &["330102", "330105", "330106", "330108", "330110"],
        cross: &["310115", "320505", "340104"],
    },
    Origin {
        procuratorate: false,
        division: "320500",
        name: "苏州市市场监督管理局（苏州市知识产权局）",
        local: &["320505", "320506", "320507", "320508", "320583"],
        cross: &["310115", "330106", "340104"],
    },
    Origin {
        procuratorate: false,
        division: "440300",
        name: "深圳市市场监督管理局（深圳市知识产权局）",
        local: &["440303", "440304", "440305", "440306"],
        cross: &["450102", "350102", "430102"],
    },
];

const PROCURATORATES: &[Origin] = &[
    Origin {
        procuratorate: true,
        division: "330100",
        name: "杭州市人民检察院",
        local: &["330102", "330106", "330108"],
        cross: &["310115", "320505"],
    },
    Origin {
        procuratorate: true,
        division: "440300",
        name: "深圳市人民检察院",
        local: &["440303", "440305", "440306"],
        cross: &["450102", "350102"],
    },
];

/// Benign narrative to grow a message to its size (no classification marking in it).
const FILLER: &str = "执法人员依法开展现场检查，固定相关证据，并依照规定移送有关机关处理。";

/// One generated message.
#[derive(Clone, Debug)]
pub struct Message {
    pub body: Vec<u8>,
    /// The demo token of its sender.
    pub token: String,
    /// The sender, `KIND:DIVISION`.
    pub sender: String,
    pub cross_region: bool,
    pub stripped: bool,
    /// Where the id's 12-digit counter is in `body`, to give a copy a new id cheaply.
    pub counter_at: std::ops::Range<usize>,
}

impl Message {
    /// A copy of the body with the id's counter set to `n` (so it is a new message).
    pub fn body_with_counter(&self, n: u64) -> Vec<u8> {
        let mut body = self.body.clone();
        let digits = format!("{:012}", n % 1_000_000_000_000);
        body[self.counter_at.clone()].copy_from_slice(digits.as_bytes());
        body
    }
}

pub struct Generator {
    mix: Mix,
    rng: SmallRng,
    /// Keeps the ids of runs (and of generators side by side) apart.
    run: String,
    count: u64,
}

impl Generator {
    /// `run` goes into every message id; `seed` makes the sequence repeatable.
    pub fn new(mix: Mix, run: &str, seed: u64) -> Generator {
        Generator { mix, rng: SmallRng::seed_from_u64(seed), run: run.to_string(), count: 0 }
    }

    pub fn next_message(&mut self) -> Message {
        self.count += 1;
        let procuratorate = self.rng.random_bool(self.mix.procuratorate.clamp(0.0, 1.0));
        let origins = if procuratorate { PROCURATORATES } else { IP_OFFICES };
        let origin = &origins[self.rng.random_range(0..origins.len())];
        let cross_region = self.rng.random_bool(self.mix.cross_region.clamp(0.0, 1.0));
        let stripped = self.rng.random_bool(self.mix.stripped.clamp(0.0, 1.0));
        let size = self.mix.sizes[self.rng.random_range(0..self.mix.sizes.len().max(1))];
        let mut divisions = vec![origin.local[self.rng.random_range(0..origin.local.len())].to_string()];
        if cross_region {
            divisions.push(origin.cross[self.rng.random_range(0..origin.cross.len())].to_string());
        }
        let id = format!("LOAD-{}-{:012}", self.run, self.count);
        let case = self.rng.random_range(1..100_000);
        let mut message = if origin.procuratorate {
            opinion_request(origin, &id, case, &divisions)
        } else {
            clue(origin, &id, case, &divisions)
        };
        if stripped {
            add_secret_attachment(&mut message, origin.procuratorate);
        }
        let body = grow(message, origin.procuratorate, size);
        let kind = if origin.procuratorate { "procuratorate" } else { "ip_office" };
        let at = find(&body, id.as_bytes()).map(|i| i + id.len() - 12).unwrap_or(0);
        Message {
            counter_at: at..at + 12,
            body,
            token: format!("demo-{kind}-{}", origin.division),
            sender: format!("{kind}:{}", origin.division),
            cross_region,
            stripped,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn clue(o: &Origin, id: &str, case: u32, divisions: &[String]) -> Value {
    json!({
        "xxid": id,
        "xxlx": "XSYS",
        "fsdw": { "dm": o.division, "mc": o.name },
        "fssj": "2026-11-20 14:03:22",
        "mj": "内部",
        "aj": {
            "ajbh": format!("市监知执〔2026〕{case}号"),
            "ajmc": "某贸易有限公司销售侵犯注册商标专用权商品案",
            "ajlb": "商标侵权",
            "ladq": "2026-10-08",
            "sjje": "1,250,000.00",
            "fsdq": divisions,
        },
        "dsr": [
            { "lx": "单位", "js": "涉嫌人", "mc": "某贸易有限公司", "tyshxydm": "91330100MA27XK3Q0E" },
            { "lx": "个人", "js": "涉嫌人", "xm": "王建国", "sfzh": "330102198503124031" },
        ],
        "qlxx": [ { "lx": "注册商标", "hm": format!("{}", 1_000_000 + case) } ],
        "nr": "现移送公安机关并抄送检察机关。",
        "zdmj": { "dsr/1/sfzh": "工作秘密" },
        "fj": [ { "wjm": "现场检查笔录.pdf", "sha256": "9f2b5c0e7d41a8b3c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3", "dx": 482113, "mj": "内部" } ],
    })
}

fn opinion_request(o: &Origin, id: &str, case: u32, divisions: &[String]) -> Value {
    json!({
        "header": {
            "messageId": id,
            "messageType": "OPINION_REQUEST",
            "sender": { "orgCode": o.division, "orgName": o.name },
            "sentAt": "2026-11-10T09:00:00+08:00",
            "secretLevel": "内部",
        },
        "body": {
            "caseInfo": {
                "caseNumber": format!("检知刑审〔2026〕{case}号"),
                "caseName": "某某公司侵犯注册商标专用权案",
                "charge": "假冒注册商标罪",
                "acceptedDate": "2026-10-20",
                "regionCodes": divisions,
                "amountInvolvedYuan": 2_310_000,
            },
            "persons": [ { "role": "犯罪嫌疑人", "name": "陈海涛", "idType": "居民身份证", "idNumber": "440305197811203031" } ],
            "ipRights": [ { "type": "TRADEMARK", "number": format!("{}", 30_000_000 + case) } ],
            "request": { "topic": "相同商标认定", "question": "涉案标识与权利人注册商标是否构成相同商标？", "replyBy": "2026-12-24" },
            "content": "商请你局提供专业意见。",
        },
    })
}

fn add_secret_attachment(message: &mut Value, procuratorate: bool) {
    let sha = "aa2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8ff";
    if procuratorate {
        message["body"]["attachments"] =
            json!([ { "fileName": "侦查部署.pdf", "sha256": sha, "size": 88000, "secretLevel": "秘密" } ]);
    } else if let Some(fj) = message["fj"].as_array_mut() {
        fj.push(json!({ "wjm": "专项行动部署.pdf", "sha256": sha, "dx": 88000, "mj": "秘密" }));
    }
}

/// Serialises `message` with its narrative grown so that the body is `size` bytes (or as
/// small as it gets, when `size` is below that).
fn grow(mut message: Value, procuratorate: bool, size: usize) -> Vec<u8> {
    let base = serde_json::to_vec(&message).unwrap_or_default();
    if base.len() >= size {
        return base;
    }
    let pointer = if procuratorate { "/body/content" } else { "/nr" };
    let Some(Value::String(text)) = message.pointer_mut(pointer) else { return base };
    let mut missing = size - base.len();
    while missing >= FILLER.len() {
        text.push_str(FILLER);
        missing -= FILLER.len();
    }
    text.extend(std::iter::repeat_n('。', missing / '。'.len_utf8()));
    text.extend(std::iter::repeat_n(' ', missing % '。'.len_utf8()));
    serde_json::to_vec(&message).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_size_asked_for() {
        for size in [1024, 16 * 1024, 64 * 1024] {
            let mut g = Generator::new(Mix { sizes: vec![size], stripped: 0.5, ..Mix::default() }, "t", 1);
            for _ in 0..50 {
                assert_eq!(g.next_message().body.len(), size);
            }
        }
    }

    #[test]
    fn shares_follow_the_mix() {
        let mix = Mix { sizes: vec![1024], procuratorate: 0.5, cross_region: 0.25, stripped: 0.1 };
        let mut g = Generator::new(mix, "t", 7);
        let all: Vec<Message> = (0..4000).map(|_| g.next_message()).collect();
        let share = |f: &dyn Fn(&Message) -> bool| all.iter().filter(|m| f(m)).count() as f64 / all.len() as f64;
        assert!((share(&|m| m.sender.starts_with("procuratorate")) - 0.5).abs() < 0.05);
        assert!((share(&|m| m.cross_region) - 0.25).abs() < 0.05);
        assert!((share(&|m| m.stripped) - 0.1).abs() < 0.03);
        let ids: std::collections::HashSet<Vec<u8>> = all.iter().map(|m| m.body.clone()).collect();
        assert_eq!(ids.len(), all.len(), "every message is new");
        let copy = all[0].body_with_counter(424242);
        let v: Value = serde_json::from_slice(&copy).unwrap();
        let id = v.pointer("/xxid").or(v.pointer("/header/messageId")).and_then(Value::as_str).unwrap();
        assert!(id.ends_with("-000000424242"), "{id}");
    }
}
