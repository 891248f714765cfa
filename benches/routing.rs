//! Routing with the full division table and 10, 100 or 500 rules: the cost of addressing one
//! message (choose recipients, make each recipient's copy). Half the rules beyond the default
//! ones have CEL conditions, half only type and sender filters; a few of them match.

use std::fmt::Write;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/it/common/config.rs"]
mod common;
use xietong::config::Config;
use xietong::model::BodyKind;
use xietong::pipeline;

const TYPES: [&str; 6] = [
    "cn.xietong.clue.transfer",
    "cn.xietong.bulletin",
    "cn.xietong.opinion.request",
    "cn.xietong.related_case.notice",
    "cn.xietong.supervision.feedback",
    "cn.xietong.non_prosecution.transfer",
];

/// The shipped configuration with `total` rules: the defaults, then synthetic ones.
fn config_with(total: usize) -> (common::ConfigDir, Config) {
    let dir = common::ConfigDir::new("");
    let defaults = std::fs::read_to_string(dir.path().join("rules.yaml")).unwrap();
    let mut rules = defaults.clone();
    let existing = defaults.matches("- name:").count();
    for i in existing..total {
        let t = TYPES[i % TYPES.len()];
        // The 31 provinces of the mainland and Hong Kong, Macao (check refuses a division that
        // does not exist).
        const PROVINCES: [u32; 33] = [
            11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61,
            62, 63, 64, 65, 81, 82,
        ];
        let province = PROVINCES[i % PROVINCES.len()];
        let _ = write!(rules, "\n  - name: synthetic-{i}\n    types: [{t}]\n    senders: [ip_office]\n");
        if i % 2 == 0 {
            let _ = writeln!(
                rules,
                "    when: sender.province == \"{province}0000\" && case.divisions.exists(d, d.startsWith(\"{province}\"))"
            );
        }
        let _ = writeln!(rules, "    copy: [ {{ national: procuratorate }} ]");
    }
    dir.replace_rules(&rules);
    let config = Config::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, config)
}

fn routing(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(root.join("tests/fixtures/shared/examples/ipo-clue-transfer-cross-region.json")).unwrap();
    let sender = "ip_office:320500".parse().unwrap();
    let mut group = c.benchmark_group("address");
    group.throughput(Throughput::Elements(1));
    for total in [10usize, 100, 500] {
        let (_dir, config) = config_with(total.max(19));
        let rules = config.router.rules().len();
        let format = config.mapping_for(&sender, BodyKind::Native).unwrap();
        let normalized = pipeline::normalize(&config.schemas, format, &sender, &body).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(format!("{rules}_rules")), &normalized, |b, n| {
            b.iter(|| pipeline::address(&config.router, &n.event, &sender, None).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
