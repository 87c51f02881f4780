//! Judge0's wire format: a submission request checked with Judge0's rules and messages
//! (422 `{"field": ["message"]}`), and a stored submission rendered with `fields`,
//! `base64_encoded` and Judge0's number and date formats.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::config::Config;
use super::files;
use super::languages::{Entry, Table};
use super::store::{Request, Submission};

/// Largest source_code, stdin or expected_output, bytes (judgebox's cap).
pub const MAX_TEXT: usize = 8 << 20;
/// Largest callback_url, characters.
pub const MAX_URL: usize = 2048;

/// Judge0's columns (and `status`, `language`): what `fields=*` returns.
pub const ALL_FIELDS: &[&str] = &[
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// judgebox's extra fields: in the default set and on request, never in `*` (the official
/// SDK sets every field it gets on a strict model).
pub const EXTRA_FIELDS: &[&str] = &["judgebox_verdict", "judgebox_enforcement", "started_at"];

pub const DEFAULT_FIELDS: &[&str] = &[
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
    "judgebox_verdict",
    "judgebox_enforcement",
];

/// Judge0's `fields` parameter: `None` is the default set, `*` all; unknown ones are an
/// error listing them.
pub fn parse_fields(param: Option<&str>) -> Result<Vec<&'static str>, String> {
    let wanted: Vec<&str> = param
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    let known = |f: &str| {
        ALL_FIELDS
            .iter()
            .chain(EXTRA_FIELDS)
            .find(|k| **k == f)
            .copied()
    };
    let invalid: Vec<&str> = wanted
        .iter()
        .filter(|f| **f != "*" && known(f).is_none())
        .copied()
        .collect();
    if !invalid.is_empty() {
        return Err(format!("invalid fields: [{}]", invalid.join(", ")));
    }
    if wanted.contains(&"*") {
        return Ok(ALL_FIELDS.to_vec());
    }
    let fields: Vec<&'static str> = wanted.iter().filter_map(|f| known(f)).collect();
    Ok(if fields.is_empty() {
        DEFAULT_FIELDS.to_vec()
    } else {
        fields
    })
}

/// Field errors in Judge0's shape.
#[derive(Debug, Default)]
pub struct Errors(Map<String, Value>);

impl Errors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let list = self
            .0
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = list {
            a.push(Value::String(message.into()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_json(self) -> Value {
        Value::Object(self.0)
    }
}

/// Ruby's lenient `Base64.decode64`: characters outside the alphabet are skipped.
pub fn decode64(text: &str) -> Vec<u8> {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '/')
        .collect();
    let cut = clean.len() - clean.len() % 4;
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut out = engine.decode(&clean[..cut]).unwrap_or_default();
    let rest = &clean[cut..];
    if rest.len() >= 2 {
        out.extend(engine.decode(rest).unwrap_or_default());
    }
    out
}

/// Ruby's `Base64.encode64`: lines of 60 characters, each ending in a newline.
pub fn encode64(bytes: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / 60 + 1);
    for chunk in flat.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Reads one submission object.
pub struct Parser<'a> {
    pub config: &'a Config,
    pub languages: &'a Table,
    pub base64: bool,
}

enum Num {
    Missing,
    Bad,
    Value(f64),
}

fn number(v: Option<&Value>) -> Num {
    match v {
        None | Some(Value::Null) => Num::Missing,
        Some(Value::Number(n)) => n.as_f64().map_or(Num::Bad, Num::Value),
        Some(Value::String(s)) if s.trim().is_empty() => Num::Missing,
        Some(Value::String(s)) => s.trim().parse::<f64>().map_or(Num::Bad, |x| {
            if x.is_finite() {
                Num::Value(x)
            } else {
                Num::Bad
            }
        }),
        Some(_) => Num::Bad,
    }
}

/// Rails' boolean cast: true/"true"/"1"/1 and false/"false"/"0"/0; `None` when absent.
fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.trim() {
            "" => None,
            "false" | "0" | "f" | "F" | "FALSE" | "off" | "OFF" => Some(false),
            _ => Some(true),
        },
        Value::Null => None,
        _ => Some(true),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// A numeric limit: Judge0's default when absent, checked against `min ..= max`.
struct Limit {
    field: &'static str,
    default: f64,
    max: f64,
    min: f64,
    /// `min` itself is allowed (`>=`) or not (`>`).
    inclusive: bool,
}

impl Parser<'_> {
    /// Judge0's validations in Judge0's order; the request with defaults or the errors.
    pub fn parse(&self, v: &Value) -> Result<(Request, &Entry), Errors> {
        let mut e = Errors::default();
        let Some(obj) = v.as_object() else {
            e.add("submission", "must be a JSON object");
            return Err(e);
        };
        let c = self.config;
        let get = |k: &str| obj.get(k);
        let entry = self.language(get("language_id"), &mut e);
        let multi = entry.is_some_and(|en| en.is_multi_file());
        let source = self.bytes(get("source_code"), "source_code", &mut e);
        let additional = self.additional_files(get("additional_files"), &mut e);
        match (multi, source.is_some()) {
            (false, false) => e.add("source_code", "can't be blank"),
            (true, true) => e.add("source_code", "must be blank"),
            _ => {}
        }
        if multi && additional.is_none() {
            e.add("additional_files", "can't be blank");
        }
        let lim = |f, default, max, min, inclusive, e: &mut Errors| {
            limit(
                get(f),
                &Limit {
                    field: f,
                    default,
                    max,
                    min,
                    inclusive,
                },
                e,
            )
        };
        let runs = lim(
            "number_of_runs",
            c.number_of_runs as f64,
            c.max_number_of_runs as f64,
            0.0,
            false,
            &mut e,
        );
        let cpu = lim(
            "cpu_time_limit",
            c.cpu_time_limit,
            c.max_cpu_time_limit,
            0.0,
            true,
            &mut e,
        );
        let extra = lim(
            "cpu_extra_time",
            c.cpu_extra_time,
            c.max_cpu_extra_time,
            0.0,
            true,
            &mut e,
        );
        let wall = lim(
            "wall_time_limit",
            c.wall_time_limit,
            c.max_wall_time_limit,
            1.0,
            true,
            &mut e,
        );
        let mem = lim(
            "memory_limit",
            c.memory_limit as f64,
            c.max_memory_limit as f64,
            2048.0,
            true,
            &mut e,
        );
        let stack = lim(
            "stack_limit",
            c.stack_limit as f64,
            c.max_stack_limit as f64,
            0.0,
            true,
            &mut e,
        );
        let procs = lim(
            "max_processes_and_or_threads",
            c.max_processes_and_or_threads as f64,
            c.max_max_processes_and_or_threads as f64,
            0.0,
            false,
            &mut e,
        );
        let per_time = boolean(get("enable_per_process_and_thread_time_limit"));
        if per_time == Some(true) && !c.allow_enable_per_process_and_thread_time_limit {
            e.add(
                "enable_per_process_and_thread_time_limit",
                "this option cannot be enabled",
            );
        }
        let per_mem = boolean(get("enable_per_process_and_thread_memory_limit"));
        if per_mem == Some(true) && !c.allow_enable_per_process_and_thread_memory_limit {
            e.add(
                "enable_per_process_and_thread_memory_limit",
                "this option cannot be enabled",
            );
        }
        let fsize = lim(
            "max_file_size",
            c.max_file_size as f64,
            c.max_max_file_size as f64,
            0.0,
            true,
            &mut e,
        );
        let compiler_options = text(get("compiler_options"));
        let args = text(get("command_line_arguments"));
        for (field, value) in [
            ("compiler_options", &compiler_options),
            ("command_line_arguments", &args),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > 512) {
                e.add(field, "is too long (maximum is 512 characters)");
            }
        }
        self.compiler_options_allowed(entry, compiler_options.as_deref(), &mut e);
        if args.as_deref().is_some_and(|a| !a.trim().is_empty()) && !c.enable_command_line_arguments
        {
            e.add(
                "command_line_arguments",
                "setting command line arguments is not allowed",
            );
        }
        let callback_url = text(get("callback_url")).filter(|u| !u.trim().is_empty());
        if let Some(url) = &callback_url {
            self.callback_allowed(url, &mut e);
        }
        if additional.is_some() && !c.enable_additional_files {
            e.add(
                "additional_files",
                "setting additional files is not allowed",
            );
        }
        let network = boolean(get("enable_network"));
        if network == Some(true) && !c.allow_enable_network {
            e.add("enable_network", "enabling network is not allowed");
        }
        let stdin = self.bytes(get("stdin"), "stdin", &mut e);
        let expected = self.bytes(get("expected_output"), "expected_output", &mut e);
        match entry {
            Some(entry) if e.is_empty() => Ok((
                Request {
                    source_code: source,
                    language_id: entry.id,
                    compiler_options,
                    command_line_arguments: args,
                    number_of_runs: runs as u64,
                    stdin,
                    expected_output: expected,
                    cpu_time_limit: cpu,
                    cpu_extra_time: extra,
                    wall_time_limit: wall,
                    memory_limit: mem as u64,
                    stack_limit: stack as u64,
                    max_processes_and_or_threads: procs as u64,
                    enable_per_process_and_thread_time_limit: per_time
                        .unwrap_or(c.enable_per_process_and_thread_time_limit),
                    enable_per_process_and_thread_memory_limit: per_mem
                        .unwrap_or(c.enable_per_process_and_thread_memory_limit),
                    max_file_size: fsize as u64,
                    redirect_stderr_to_stdout: boolean(get("redirect_stderr_to_stdout"))
                        .unwrap_or(c.redirect_stderr_to_stdout),
                    callback_url,
                    additional_files: additional,
                    enable_network: network.unwrap_or(c.enable_network),
                },
                entry,
            )),
            _ => Err(e),
        }
    }

    fn language(&self, v: Option<&Value>, e: &mut Errors) -> Option<&Entry> {
        let id = match number(v) {
            Num::Missing => {
                e.add("language_id", "can't be blank");
                return None;
            }
            Num::Bad => {
                let shown = text(v).unwrap_or_default();
                e.add(
                    "language_id",
                    format!("language with id {shown} doesn't exist"),
                );
                return None;
            }
            Num::Value(x) => x,
        };
        let entry = (id >= 0.0 && id <= u32::MAX as f64)
            .then(|| self.languages.get(id as u32))
            .flatten();
        match entry {
            None => {
                e.add(
                    "language_id",
                    format!("language with id {} doesn't exist", id as i64),
                );
                None
            }
            Some(en) if !en.available => {
                e.add(
                    "language_id",
                    format!(
                        "language with id {} ({}) is not available on this server: its image {} is missing; get it with: {}",
                        en.id, en.name, en.lang.image, en.how_to_get
                    ),
                );
                None
            }
            Some(en) => Some(en),
        }
    }

    /// A text field, base64-decoded when the request says so, capped at MAX_TEXT.
    fn bytes(&self, v: Option<&Value>, field: &str, e: &mut Errors) -> Option<Vec<u8>> {
        let t = text(v)?;
        let b = if self.base64 {
            decode64(&t)
        } else {
            t.into_bytes()
        };
        if b.len() > MAX_TEXT {
            e.add(field, format!("is too long (maximum is {MAX_TEXT} bytes)"));
            return None;
        }
        Some(b)
    }

    fn additional_files(&self, v: Option<&Value>, e: &mut Errors) -> Option<Vec<u8>> {
        let t = text(v).filter(|t| !t.trim().is_empty())?;
        let zip = decode64(&t);
        if let Err(err) = files::read_zip(&zip, self.config.max_extract_size) {
            e.add("additional_files", err.to_string());
        }
        Some(zip)
    }

    fn compiler_options_allowed(&self, entry: Option<&Entry>, opts: Option<&str>, e: &mut Errors) {
        if opts.is_none_or(|o| o.trim().is_empty()) {
            return;
        }
        let c = self.config;
        if !c.enable_compiler_options {
            e.add(
                "compiler_options",
                "setting compiler options is not allowed",
            );
            return;
        }
        let Some(entry) = entry else {
            return;
        };
        if entry.compile_cmd().is_none() {
            e.add(
                "compiler_options",
                "setting compiler options is only allowed for compiled languages",
            );
            return;
        }
        let allowed = &c.allowed_languages_for_compiler_options;
        if !allowed.is_empty()
            && !allowed
                .iter()
                .any(|a| entry.name.starts_with(&format!("{a} ")))
        {
            let list = match allowed.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
                _ => allowed.join(""),
            };
            e.add(
                "compiler_options",
                format!("setting compiler options is only allowed for {list}"),
            );
        }
    }

    fn callback_allowed(&self, url: &str, e: &mut Errors) {
        if !self.config.enable_callbacks {
            e.add("callback_url", "setting callback is not allowed");
            return;
        }
        if url.len() > MAX_URL {
            e.add(
                "callback_url",
                format!("is too long (maximum is {MAX_URL} characters)"),
            );
            return;
        }
        if let Err(msg) = super::callback::check_url(url, &self.config.callbacks_allowed_hosts) {
            e.add("callback_url", msg);
        }
    }
}

fn limit(v: Option<&Value>, l: &Limit, e: &mut Errors) -> f64 {
    let x = match number(v) {
        Num::Missing => return l.default,
        Num::Bad => {
            e.add(l.field, "is not a number");
            return l.default;
        }
        Num::Value(x) => x,
    };
    if l.inclusive && x < l.min {
        e.add(
            l.field,
            format!("must be greater than or equal to {}", ruby_num(l.min)),
        );
    } else if !l.inclusive && x <= l.min {
        e.add(l.field, format!("must be greater than {}", ruby_num(l.min)));
    } else if x > l.max {
        e.add(
            l.field,
            format!("must be less than or equal to {}", ruby_num(l.max)),
        );
    }
    x
}

/// A number as Ruby prints it in validation messages (`20`, `2.5`).
fn ruby_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A decimal column as Rails renders it: a string such as "0.002" or "5.0".
pub fn decimal(x: f64) -> String {
    let s = format!("{:.3}", x);
    let s = s.trim_end_matches('0');
    if s.ends_with('.') {
        format!("{s}0")
    } else {
        s.to_string()
    }
}

/// Unix milliseconds as Rails' ISO 8601 (`2026-12-03T16:30:27.123Z`).
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Judge0's status descriptions by id.
pub fn status_name(id: u32) -> &'static str {
    STATUSES
        .iter()
        .find(|(i, _)| *i == id)
        .map_or("Internal Error", |(_, n)| n)
}

pub const STATUSES: &[(u32, &str)] = &[
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

/// Output that is not UTF-8 while base64 was not asked for.
#[derive(Debug)]
pub struct NotUtf8;

/// Renders a submission with the given fields.
pub fn render(
    s: &Submission,
    fields: &[&str],
    base64: bool,
    languages: &Table,
) -> Result<Value, NotUtf8> {
    let mut m = Map::new();
    let r = &s.request;
    let o = s.outcome.clone().unwrap_or_default();
    let blob = |b: &Option<Vec<u8>>| -> Result<Value, NotUtf8> {
        match b {
            None => Ok(Value::Null),
            Some(b) if base64 => Ok(Value::String(encode64(b))),
            Some(b) => String::from_utf8(b.clone())
                .map(Value::String)
                .map_err(|_| NotUtf8),
        }
    };
    let done = s.outcome.is_some();
    for f in fields {
        let v = match *f {
            "source_code" => blob(&r.source_code)?,
            "language_id" => json!(r.language_id),
            "stdin" => blob(&r.stdin)?,
            "expected_output" => blob(&r.expected_output)?,
            "stdout" => blob(&o.stdout)?,
            "stderr" => blob(&o.stderr)?,
            "compile_output" => blob(&o.compile_output)?,
            "status_id" => json!(s.status_id),
            "created_at" => json!(iso8601(s.created_at)),
            "finished_at" => json!(s.finished_at.map(iso8601)),
            "started_at" => json!(s.started_at.map(iso8601)),
            "time" => json!(o.time.map(decimal)),
            "wall_time" => json!(o.wall_time.map(decimal)),
            "memory" => json!(o.memory),
            "token" => json!(s.token),
            "number_of_runs" => json!(r.number_of_runs),
            "cpu_time_limit" => json!(decimal(r.cpu_time_limit)),
            "cpu_extra_time" => json!(decimal(r.cpu_extra_time)),
            "wall_time_limit" => json!(decimal(r.wall_time_limit)),
            "memory_limit" => json!(r.memory_limit),
            "stack_limit" => json!(r.stack_limit),
            "max_processes_and_or_threads" => json!(r.max_processes_and_or_threads),
            "enable_per_process_and_thread_time_limit" => {
                json!(r.enable_per_process_and_thread_time_limit)
            }
            "enable_per_process_and_thread_memory_limit" => {
                json!(r.enable_per_process_and_thread_memory_limit)
            }
            "max_file_size" => json!(r.max_file_size),
            "exit_code" => json!(o.exit_code),
            "exit_signal" => json!(o.exit_signal),
            "message" => match &o.message {
                Some(msg) if base64 => json!(encode64(msg.as_bytes())),
                other => json!(other),
            },
            "compiler_options" => json!(r.compiler_options),
            "command_line_arguments" => json!(r.command_line_arguments),
            "redirect_stderr_to_stdout" => json!(r.redirect_stderr_to_stdout),
            "callback_url" => json!(r.callback_url),
            "additional_files" => json!(r.additional_files.as_deref().map(encode64)),
            "enable_network" => json!(r.enable_network),
            "status" => json!({"id": s.status_id, "description": status_name(s.status_id)}),
            "language" => {
                let name = languages.get(r.language_id).map(|e| e.name.clone());
                json!({"id": r.language_id, "name": name})
            }
            "judgebox_verdict" => json!(if done { o.verdict.clone() } else { None }),
            "judgebox_enforcement" => o.enforcement.clone().unwrap_or(Value::Null),
            _ => continue,
        };
        m.insert(f.to_string(), v);
    }
    Ok(Value::Object(m))
}

/// Judge0's error for output that cannot be shown as UTF-8.
pub const NOT_UTF8_ONE: &str =
    "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";
pub const NOT_UTF8_MANY: &str = "some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_rails() {
        assert_eq!(decimal(5.0), "5.0");
        assert_eq!(decimal(0.002), "0.002");
        assert_eq!(decimal(0.0246), "0.025");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_796_316_627_123), "2026-12-03T16:50:27.123Z");
        assert_eq!(encode64(b"hi"), "aGk=\n");
        assert_eq!(decode64("aGk=\n"), b"hi");
        assert_eq!(decode64("aGk"), b"hi");
        assert_eq!(decode64("a\nG\tk=="), b"hi");
    }

    #[test]
    fn fields_are_judge0s() {
        assert_eq!(parse_fields(None).unwrap(), DEFAULT_FIELDS);
        assert_eq!(parse_fields(Some("*")).unwrap().len(), 35);
        assert_eq!(
            parse_fields(Some("token,stdout")).unwrap(),
            ["token", "stdout"]
        );
        assert_eq!(
            parse_fields(Some("token,bogus,x")).unwrap_err(),
            "invalid fields: [bogus, x]"
        );
    }
}
