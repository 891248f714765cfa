//! Cost of the pure pipeline (parse → classify → scan → map → strip → validate) per message.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xietong::config::Config;

fn pipeline(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("config")).expect("config checks");
    let mut group = c.benchmark_group("pipeline");
    for (file, sender) in [
        ("ipo-clue-transfer.json", "ip_office:330100"),
        ("ipo-bulletin-field-secret.json", "ip_office:330000"),
        ("prc-opinion-request.json", "procuratorate:440300"),
    ] {
        let body = std::fs::read(root.join("tests/fixtures/shared/examples").join(file)).unwrap();
        let sender = sender.parse().unwrap();
        let format = config.mapping_for(&sender, xietong::model::BodyKind::Native).unwrap().clone();
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(file, |b| {
            b.iter(|| xietong::pipeline::normalize(&config.schemas, &format, &sender, &body).expect("accepted"))
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
