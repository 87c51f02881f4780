//! Judge0's language table: every Judge0 id a manifest claims (C 48/49/50/75, C++ 52/53/
//! 54/76, ...), plus 43 Plain Text, 44 Executable and 89 Multi-file program, which run in
//! the image of the C language (or the first language with the default seccomp profile).

use serde_json::{json, Value};

use crate::image::store::Store as ImageStore;
use crate::lang::{Catalog, Language};

pub const PLAIN_TEXT: u32 = 43;
pub const EXECUTABLE: u32 = 44;
pub const MULTI_FILE: u32 = 89;

/// One entry of the table.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u32,
    pub name: String,
    pub lang: Language,
    /// The image is in the store (or a `--rootfs` replaces every image).
    pub available: bool,
    /// The command that puts the image in the store.
    pub how_to_get: String,
}

impl Entry {
    pub fn is_multi_file(&self) -> bool {
        self.id == MULTI_FILE
    }

    /// Judge0's `compile_cmd` (`%s` for compiler_options), `None` for interpreted ones.
    pub fn compile_cmd(&self) -> Option<String> {
        if self.is_multi_file() {
            return None;
        }
        self.lang.compile.as_ref().map(|c| command_text(&c.command))
    }

    pub fn run_cmd(&self) -> Option<String> {
        (!self.is_multi_file()).then(|| command_text(&self.lang.run.command))
    }

    /// `/languages/{id}`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "is_archived": false,
            "source_file": (!self.is_multi_file()).then_some(&self.lang.source_file),
            "compile_cmd": self.compile_cmd(),
            "run_cmd": self.run_cmd(),
            "available": self.available,
        })
    }
}

/// A manifest command as one line, placeholders in Judge0's style.
fn command_text(argv: &[String]) -> String {
    argv.iter()
        .filter(|w| w.as_str() != "{args}")
        .map(|w| match w.as_str() {
            "{compiler_options}" => "%s".to_string(),
            w if w.contains(' ') => format!("'{w}'"),
            w => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The table.
#[derive(Debug, Clone)]
pub struct Table {
    entries: Vec<Entry>,
}

impl Table {
    /// Builds the table; `images` tells which images are present (`None`: all are, as
    /// with `--rootfs`).
    pub fn build(catalog: &Catalog, images: Option<&ImageStore>) -> Table {
        let how = |l: &Language| match &l.build {
            Some(short) => format!("scripts/build-images.sh {short}"),
            None => format!("judgebox image pull {}", l.image),
        };
        let present = |l: &Language| images.is_none_or(|s| s.find(&l.image).is_ok());
        let mut entries = Vec::new();
        for lang in catalog.all() {
            for id in &lang.judge0_ids {
                entries.push(Entry {
                    id: *id,
                    name: lang.display.clone(),
                    lang: lang.clone(),
                    available: present(lang),
                    how_to_get: how(lang),
                });
            }
        }
        let host = catalog
            .find("c")
            .ok()
            .or_else(|| catalog.all().find(|l| l.seccomp == "default"))
            .cloned();
        if let Some(host) = host {
            for (id, name, lang) in synthetic(&host) {
                if entries.iter().any(|e| e.id == id) {
                    continue;
                }
                entries.push(Entry {
                    id,
                    name: name.into(),
                    available: present(&host),
                    how_to_get: how(&host),
                    lang,
                });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Table { entries }
    }

    pub fn get(&self, id: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub fn all(&self) -> &[Entry] {
        &self.entries
    }
}

/// 43, 44 and 89, in the image (and under the run limits) of `host`.
fn synthetic(host: &Language) -> Vec<(u32, &'static str, Language)> {
    let make = |name: &str, source: &str, command: &[&str]| {
        let mut l = host.clone();
        l.name = name.into();
        l.display = name.into();
        l.source_file = source.into();
        l.compile = None;
        l.artifacts = Vec::new();
        l.memory_errors = Vec::new();
        l.run.command = command.iter().map(|s| s.to_string()).collect();
        l
    };
    vec![
        (
            PLAIN_TEXT,
            "Plain Text",
            make("plain-text", "text.txt", &["/bin/cat", "text.txt"]),
        ),
        (
            EXECUTABLE,
            "Executable",
            make("executable", "a.out", &["./a.out", "{args}"]),
        ),
        (
            MULTI_FILE,
            "Multi-file program",
            // The real commands come from the zip's `compile` and `run` (runner.rs).
            make("multi-file", "run", &["/bin/sh", "run", "{args}"]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge0_ids_and_commands() {
        let t = Table::build(&Catalog::shipped().unwrap(), None);
        for id in [
            48, 49, 50, 75, 52, 53, 54, 76, 62, 63, 71, 60, 73, 46, 43, 44, 89,
        ] {
            assert!(t.get(id).is_some(), "id {id}");
        }
        let cpp = t.get(54).unwrap();
        assert!(cpp.name.starts_with("C++ (GCC"), "{}", cpp.name);
        assert!(cpp.compile_cmd().unwrap().contains("%s"));
        assert_eq!(t.get(71).unwrap().compile_cmd(), None);
        assert_eq!(t.get(43).unwrap().run_cmd().unwrap(), "/bin/cat text.txt");
        assert_eq!(t.get(89).unwrap().to_json()["source_file"], Value::Null);
    }
}
