//! The configuration a test runs with: a copy of the repository's `config/` it may change.
//! Shared by the tests, the benchmarks and the examples.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use xietong::config::Config;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the repository's `config/` in a temporary directory. A non-empty `settings`
/// replaces `xietong.yaml` (every setting it leaves out takes its default).
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
}

impl ConfigDir {
    pub fn new(settings: &str) -> ConfigDir {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&root().join("config"), dir.path());
        if !settings.is_empty() {
            std::fs::write(dir.path().join("xietong.yaml"), settings).unwrap();
        }
        ConfigDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, text: &str) {
        std::fs::write(self.path().join(relative), text).unwrap();
    }

    /// Replaces rules.yaml with rules that route differently from the defaults on purpose: the
    /// shipped routing tests (rules.test.yaml), which pin the defaults, go.
    pub fn replace_rules(&self, rules: &str) {
        self.write("rules.yaml", rules);
        let _ = std::fs::remove_file(self.path().join("rules.test.yaml"));
    }

    /// Adds an agency with its demo token (`demo-KIND-DIVISION`) to agencies.yaml.
    pub fn connect(&self, agency: &str) {
        let path = self.path().join("agencies.yaml");
        let mut agencies = std::fs::read_to_string(&path).unwrap();
        let token = format!("demo-{}", agency.replace(':', "-"));
        let hash = xietong::token::format_hash(&xietong::token::hash(&token));
        agencies.push_str(&format!("\n  - id: {agency}\n    tokens: [{hash}]\n"));
        std::fs::write(path, agencies).unwrap();
    }

    pub fn load(&self) -> Config {
        Config::load(self.path()).unwrap_or_else(|e| panic!("test config does not check:\n{e}"))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
