//! Language manifests (`rootfs-manifests/*.toml`): how to compile and run one language,
//! in which image, under which limits. The shipped manifests are compiled into the
//! binary; a directory of manifests can replace them (`--manifests DIR`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::units;

/// The shipped manifests, embedded so the binary is self-contained.
const SHIPPED: &[(&str, &str)] = &[
    ("c.toml", include_str!("../../rootfs-manifests/c.toml")),
    ("cpp.toml", include_str!("../../rootfs-manifests/cpp.toml")),
    (
        "python3.toml",
        include_str!("../../rootfs-manifests/python3.toml"),
    ),
    (
        "javascript.toml",
        include_str!("../../rootfs-manifests/javascript.toml"),
    ),
    (
        "java.toml",
        include_str!("../../rootfs-manifests/java.toml"),
    ),
    ("go.toml", include_str!("../../rootfs-manifests/go.toml")),
    (
        "rust.toml",
        include_str!("../../rootfs-manifests/rust.toml"),
    ),
    (
        "bash.toml",
        include_str!("../../rootfs-manifests/bash.toml"),
    ),
];

#[derive(Debug, Error)]
pub enum LangError {
    #[error("language manifest {file}: {detail}")]
    Parse { file: String, detail: String },
    #[error("language manifest {file}: {detail}")]
    Invalid { file: String, detail: String },
    #[error("language manifests {dir}: {source}")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("languages {first} and {second} both claim {what}")]
    Duplicate {
        first: String,
        second: String,
        what: String,
    },
    #[error("unknown language '{wanted}' (known: {known})")]
    Unknown { wanted: String, known: String },
}

/// One step (compile or run): a command and its default limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// argv; `{compiler_options}` and `{args}` elements expand to zero or more words,
    /// `{memory_limit}` inside a word becomes the memory limit in bytes.
    pub command: Vec<String>,
    pub time: f64,
    pub wall_time: f64,
    pub memory: u64,
    pub pids: u64,
    pub output: u64,
}

/// A language: what `judgebox judge --lang NAME` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Language {
    pub name: String,
    pub display: String,
    pub judge0_ids: Vec<u32>,
    /// Image reference, as `judgebox image pull/import` names it.
    pub image: String,
    /// The short name `scripts/build-images.sh` builds the image under.
    pub build: Option<String>,
    /// The submission's file name in /box.
    pub source_file: String,
    pub compile: Option<Step>,
    pub run: Step,
    /// Files the compile step leaves in /box for the run step.
    pub artifacts: Vec<String>,
    pub env: Vec<String>,
    pub seccomp: String,
    /// Runtime messages (on stderr) that mean the program ran out of memory on its own
    /// terms, e.g. a JVM's `java.lang.OutOfMemoryError`: judged as memory_limit.
    pub memory_errors: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLanguage {
    name: String,
    display: String,
    judge0_ids: Vec<u32>,
    image: String,
    #[serde(default)]
    build: Option<String>,
    source_file: String,
    #[serde(default)]
    artifacts: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default = "default_seccomp")]
    seccomp: String,
    #[serde(default)]
    memory_errors: Vec<String>,
    #[serde(default)]
    compile: Option<RawStep>,
    run: RawStep,
}

fn default_seccomp() -> String {
    "default".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    command: Vec<String>,
    time: f64,
    wall_time: f64,
    memory: String,
    pids: u64,
    output: String,
}

impl Language {
    /// Parses one manifest; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Language, LangError> {
        let raw: RawLanguage = toml::from_str(text).map_err(|e| LangError::Parse {
            file: file.to_string(),
            detail: e.to_string().trim().replace('\n', " "),
        })?;
        let invalid = |detail: String| LangError::Invalid {
            file: file.to_string(),
            detail,
        };
        check_name(&raw.name).map_err(&invalid)?;
        check_plain_box_name("source_file", &raw.source_file).map_err(&invalid)?;
        for a in &raw.artifacts {
            check_plain_box_name("artifacts", a).map_err(&invalid)?;
        }
        if raw.compile.is_some() == raw.artifacts.is_empty() {
            return Err(invalid(
                "a compile step needs 'artifacts' (the files the run step uses), and only a compile step has them".into(),
            ));
        }
        for e in &raw.env {
            if !e.contains('=') || e.starts_with('=') {
                return Err(invalid(format!("env entry '{e}' is not KEY=VALUE")));
            }
        }
        let compile = raw
            .compile
            .map(|s| step(s, "compile"))
            .transpose()
            .map_err(&invalid)?;
        let run = step(raw.run, "run").map_err(&invalid)?;
        Ok(Language {
            name: raw.name,
            display: raw.display,
            judge0_ids: raw.judge0_ids,
            image: raw.image,
            build: raw.build,
            source_file: raw.source_file,
            compile,
            run,
            artifacts: raw.artifacts,
            env: raw.env,
            seccomp: raw.seccomp,
            memory_errors: raw.memory_errors,
        })
    }

    /// The compile command for the given compiler options (already split into words).
    pub fn compile_argv(&self, options: &[String], memory: u64) -> Option<Vec<String>> {
        let c = self.compile.as_ref()?;
        Some(expand(&c.command, options, &[], memory))
    }

    /// The run command for the given program arguments.
    pub fn run_argv(&self, args: &[String], memory: u64) -> Vec<String> {
        expand(&self.run.command, &[], args, memory)
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name '{name}': use lowercase letters, digits and + - _ ."
        ))
    }
}

/// A plain file name in /box (the sandbox's rule): no slash, not `.`/`..`, not empty.
fn check_plain_box_name(field: &str, name: &str) -> Result<(), String> {
    if !crate::sandbox::is_box_file_name(name) {
        return Err(format!(
            "{field} '{name}' must be a plain file name in /box"
        ));
    }
    Ok(())
}

fn step(raw: RawStep, which: &str) -> Result<Step, String> {
    if raw.command.is_empty() {
        return Err(format!("[{which}] command is empty"));
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(raw.time) || !positive(raw.wall_time) {
        return Err(format!(
            "[{which}] time and wall_time must be positive seconds"
        ));
    }
    let size = |field: &str, text: &str| {
        units::parse_size(text).map_err(|e| format!("[{which}] {field}: {e}"))
    };
    Ok(Step {
        command: raw.command,
        time: raw.time,
        wall_time: raw.wall_time,
        memory: size("memory", &raw.memory)?,
        pids: raw.pids,
        output: size("output", &raw.output)?,
    })
}

/// Expands the placeholders of a command template.
fn expand(template: &[String], options: &[String], args: &[String], memory: u64) -> Vec<String> {
    let mut argv = Vec::with_capacity(template.len() + options.len() + args.len());
    for word in template {
        match word.as_str() {
            "{compiler_options}" => argv.extend(options.iter().cloned()),
            "{args}" => argv.extend(args.iter().cloned()),
            w => argv.push(w.replace("{memory_limit}", &memory.to_string())),
        }
    }
    argv
}

/// The set of known languages.
#[derive(Debug, Clone)]
pub struct Catalog {
    languages: BTreeMap<String, Language>,
}

impl Catalog {
    /// The manifests compiled into the binary.
    pub fn shipped() -> Result<Catalog, LangError> {
        Catalog::from_texts(SHIPPED.iter().map(|(f, t)| (f.to_string(), t.to_string())))
    }

    /// Every `*.toml` in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Catalog, LangError> {
        let io = |source| LangError::Dir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut texts = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("toml") {
                let text = std::fs::read_to_string(&path).map_err(io)?;
                texts.push((path.display().to_string(), text));
            }
        }
        texts.sort();
        Catalog::from_texts(texts.into_iter())
    }

    fn from_texts(texts: impl Iterator<Item = (String, String)>) -> Result<Catalog, LangError> {
        let mut languages: BTreeMap<String, Language> = BTreeMap::new();
        let mut ids: BTreeMap<u32, String> = BTreeMap::new();
        for (file, text) in texts {
            let lang = Language::parse(&file, &text)?;
            if let Some(other) = languages.get(&lang.name) {
                return Err(LangError::Duplicate {
                    first: other.name.clone(),
                    second: file,
                    what: format!("the name {}", lang.name),
                });
            }
            for id in &lang.judge0_ids {
                if let Some(other) = ids.insert(*id, lang.name.clone()) {
                    return Err(LangError::Duplicate {
                        first: other,
                        second: lang.name.clone(),
                        what: format!("Judge0 language id {id}"),
                    });
                }
            }
            languages.insert(lang.name.clone(), lang);
        }
        Ok(Catalog { languages })
    }

    pub fn all(&self) -> impl Iterator<Item = &Language> {
        self.languages.values()
    }

    /// By name, or by Judge0 language id (`54`).
    pub fn find(&self, wanted: &str) -> Result<&Language, LangError> {
        let by_id = wanted
            .parse::<u32>()
            .ok()
            .and_then(|id| self.all().find(|l| l.judge0_ids.contains(&id)));
        by_id
            .or_else(|| self.languages.get(wanted))
            .ok_or_else(|| LangError::Unknown {
                wanted: wanted.to_string(),
                known: self
                    .languages
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_manifest_parses_and_every_file_is_shipped() {
        let catalog = Catalog::shipped().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-manifests");
        let on_disk = Catalog::from_dir(&dir).unwrap();
        let names = |c: &Catalog| c.all().map(|l| l.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&catalog),
            names(&on_disk),
            "a manifest file is not embedded"
        );
        for wanted in [
            "c",
            "cpp",
            "python3",
            "javascript",
            "java",
            "go",
            "rust",
            "bash",
        ] {
            catalog.find(wanted).unwrap();
        }
        for (id, name) in [
            (50, "c"),
            (54, "cpp"),
            (71, "python3"),
            (63, "javascript"),
            (62, "java"),
            (60, "go"),
            (73, "rust"),
            (46, "bash"),
        ] {
            assert_eq!(catalog.find(&id.to_string()).unwrap().name, name);
        }
    }

    #[test]
    fn placeholders_expand_to_words() {
        let c = Catalog::shipped().unwrap();
        let cpp = c.find("cpp").unwrap();
        let argv = cpp
            .compile_argv(&["-DLOCAL".into(), "-Wall".into()], 1 << 20)
            .unwrap();
        assert!(argv.contains(&"-DLOCAL".to_string()) && argv.contains(&"-Wall".to_string()));
        assert!(!argv.iter().any(|w| w.contains('{')), "{argv:?}");
        let none = cpp.compile_argv(&[], 1).unwrap();
        assert_eq!(none.len(), argv.len() - 2);
        let run = cpp.run_argv(&["a b".into()], 1);
        assert_eq!(run.last().unwrap(), "a b");
    }

    #[test]
    fn bad_manifests_name_the_file_and_the_problem() {
        let good = r#"
            name = "x"
            display = "X"
            judge0_ids = [1]
            image = "i"
            source_file = "main.x"
            [run]
            command = ["x", "main.x"]
            time = 1.0
            wall_time = 2.0
            memory = "64M"
            pids = 4
            output = "1M"
        "#;
        Language::parse("x.toml", good).unwrap();
        for (bad, needle) in [
            (
                good.replace("main.x\"\n", "../main.x\"\n"),
                "plain file name",
            ),
            (good.replace("\"64M\"", "\"lots\""), "memory"),
            (good.replace("time = 1.0", "time = -1.0"), "positive"),
            (good.replace("pids = 4", "pids = 4\nbogus = 1"), "bogus"),
            (
                good.replace("command = [\"x\", \"main.x\"]", "command = []"),
                "empty",
            ),
            (good.replace("name = \"x\"", "name = \"X Y\""), "lowercase"),
        ] {
            let err = Language::parse("x.toml", &bad).unwrap_err().to_string();
            assert!(err.contains("x.toml") && err.contains(needle), "{err}");
        }
        let a = Language::parse("a.toml", good).unwrap();
        let dup = Catalog::from_texts(
            [
                ("a.toml".to_string(), good.to_string()),
                (
                    "b.toml".to_string(),
                    good.replace("name = \"x\"", "name = \"y\""),
                ),
            ]
            .into_iter(),
        );
        assert!(matches!(dup, Err(LangError::Duplicate { .. })), "{a:?}");
    }

    #[test]
    fn unknown_language_lists_the_known_ones() {
        let err = Catalog::shipped()
            .unwrap()
            .find("cobol")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cobol") && err.contains("python3") && err.contains("cpp"),
            "{err}"
        );
    }
}
