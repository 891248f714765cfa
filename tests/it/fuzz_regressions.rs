//! Every seed of the fuzz corpus and every input that once crashed a fuzz target
//! (`fuzz/regressions/TARGET/`) runs through the target's body again (`xietong::fuzzing`),
//! so a fixed crash stays fixed without nightly or the fuzzer.

use crate::common::root;

fn run(target: &str, body: fn(&[u8])) -> usize {
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root().join("fuzz").join(dir).join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|f| f.to_string_lossy().starts_with('.')) {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| body(&data)) {
                panic!("{} crashes {target} again: {panic:?}", path.display());
            }
            n += 1;
        }
    }
    n
}

#[test]
fn the_mapping_engine_survives_its_corpus_and_regressions() {
    assert!(run("mapping", xietong::fuzzing::mapping) >= 16, "the seed corpus is there");
}

#[test]
fn the_marking_scanner_survives_its_corpus_and_regressions() {
    assert!(run("marking", xietong::fuzzing::marking) >= 5);
}

#[test]
fn pointer_handling_survives_its_corpus_and_regressions() {
    assert!(run("pointer", xietong::fuzzing::pointer) >= 4);
}
