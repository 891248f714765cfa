//! `sources/*.yaml`: the source formats, compiled (docs/mapping.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::ConfigError;
use crate::model::schema::Schemas;
use crate::normalize::Mapping;

/// The compiled formats, and the names of every format file (also those with errors, so that
/// references to them are not reported a second time).
pub fn load(
    dir: &Path,
    schemas: &Schemas,
    errors: &mut Vec<ConfigError>,
) -> (BTreeMap<String, Arc<Mapping>>, BTreeSet<String>) {
    let mut formats = BTreeMap::new();
    let mut declared = BTreeSet::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(ConfigError::new(dir, format!("cannot read the source formats: {e}")));
            return (formats, declared);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    for file in files {
        if let Some(stem) = file.file_stem().and_then(|s| s.to_str()) {
            declared.insert(stem.to_string());
        }
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ConfigError::new(&file, format!("cannot read: {e}")));
                continue;
            }
        };
        match Mapping::from_yaml(&text, schemas) {
            Ok(mapping) => {
                let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                if mapping.name != stem {
                    errors.push(ConfigError::new(
                        &file,
                        format!("format `{}` must live in a file named {}.yaml", mapping.name, mapping.name),
                    ));
                } else if mapping.name == "cloudevents" {
                    errors.push(ConfigError::new(
                        &file,
                        "`cloudevents` is the built-in canonical format; choose another name",
                    ));
                } else {
                    formats.insert(mapping.name.clone(), Arc::new(mapping));
                }
            }
            Err(es) => errors.extend(es.into_iter().map(|e| ConfigError::from_spec(&file, e))),
        }
    }
    (formats, declared)
}
