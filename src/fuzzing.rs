//! The bodies of the fuzz targets (`fuzz/`), here so that the regression tests run exactly what
//! the fuzzer ran: every input of the seed corpus and every crash once found
//! (`fuzz/regressions/`) goes through these in `tests/fuzz_regressions.rs`. Each panics only
//! on a bug: a refusal is a normal outcome.

use std::sync::{Arc, LazyLock};

use jsonptr::PointerBuf;
use serde_json::Value;

use crate::model::AgencyId;
use crate::model::schema::Schemas;
use crate::normalize::Mapping;
use crate::secrecy::{scan, strip};

struct Formats {
    schemas: Schemas,
    mappings: Vec<(AgencyId, Mapping)>,
}

static FORMATS: LazyLock<Arc<Formats>> = LazyLock::new(|| {
    let schemas = Schemas::load().expect("the embedded schemas load");
    let compile = |yaml: &str| Mapping::from_yaml(yaml, &schemas).expect("the shipped formats compile");
    let mappings = vec![
        ("ip_office:330100".parse().unwrap(), compile(include_str!("../config/sources/ipo-enforcement.yaml"))),
        ("procuratorate:440300".parse().unwrap(), compile(include_str!("../config/sources/procuratorate-case.yaml"))),
        ("ip_office:330100".parse().unwrap(), Mapping::cloudevents(&schemas).expect("the built-in format compiles")),
        // The worked onboarding of an XML export (docs/mapping.md): one_or_many, join, patterns,
        // amounts with units, level codes.
        ("public_security:320500".parse().unwrap(), compile(include_str!("../docs/examples/psb-economic-crime.yaml"))),
    ];
    Arc::new(Formats { schemas, mappings })
});

/// The mapping engine: a body through every shipped format, the whole pipeline up to the
/// canonical event; and the same bytes as a format file for the mapping compiler.
pub fn mapping(data: &[u8]) {
    let formats = FORMATS.clone();
    if let Ok(doc) = crate::pipeline::parse(data, &crate::model::shape::Shape::default()) {
        for (sender, mapping) in &formats.mappings {
            let sender = crate::model::Sender::Agency(*sender);
            if let Ok(n) = crate::pipeline::normalize_document(&formats.schemas, mapping, &sender, doc.clone()) {
                assert!(n.event.get("data").is_some(), "an accepted message has data");
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Mapping::from_yaml(text, &formats.schemas);
    }
}

/// The marking scanner: free text, and every string of a JSON document.
pub fn marking(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(m) = scan::find_marking(&text) {
        assert!(m.offset < text.chars().count(), "the offset is inside the text");
    }
    if let Ok(doc) = serde_json::from_slice::<Value>(data)
        && let Some(found) = scan::scan(&doc, &|_| false)
    {
        assert!(found.pointer.resolve(&doc).is_ok(), "the pointer names the marked string");
    }
}

/// JSON pointer handling: the first line is a pointer, the rest a document; removing what the
/// pointer names leaves nothing there, and never touches the root.
pub fn pointer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (pointer, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(pointer) = PointerBuf::parse(pointer) else { return };
    let Ok(mut doc) = serde_json::from_str::<Value>(rest) else { return };
    let removed = strip::remove(&mut doc, &pointer);
    if removed {
        assert!(
            pointer.resolve(&doc).map_or(true, Value::is_null),
            "after removal the pointer names nothing (or a null kept for array indices)"
        );
    }
    if pointer.is_root() {
        assert!(!removed, "the root is never removed");
    }
}
