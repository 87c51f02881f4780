//! The profile file format: the OCI runtime-spec `LinuxSeccomp` object extended the way
//! Docker's profiles are (`archMap`, per-rule `includes`/`excludes`, `comment`, the
//! deprecated single `name`). These are our own serde structs: unknown fields are
//! rejected (a typo must not silently drop a rule), and the conditional fields are kept,
//! unlike `oci_spec::runtime::LinuxSeccomp`, which drops `includes`/`excludes` and so
//! turns Docker's profile into one that allows mount, unshare, setns, bpf and ptrace.
//! Values are checked later, in `resolve`, where errors can name the field.

use serde::Deserialize;

use super::error::SeccompError;

/// A whole profile, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawProfile {
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    #[serde(default)]
    pub arch_map: Option<Vec<RawArchMap>>,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    #[serde(default)]
    pub listener_path: Option<String>,
    #[serde(default)]
    pub listener_metadata: Option<String>,
    #[serde(default)]
    pub syscalls: Option<Vec<RawSyscall>>,
}

/// One `archMap` entry: an architecture and the sub-architectures its filter covers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

/// One rule: an action for a list of syscalls, optionally only for some argument values
/// and only under some conditions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawSyscall {
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Deprecated single-name form, still accepted by Docker.
    #[serde(default)]
    pub name: Option<String>,
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Option<Vec<RawArg>>,
    #[serde(default)]
    #[allow(dead_code)] // documentation only
    pub comment: Option<String>,
    #[serde(default)]
    pub includes: Option<RawCondition>,
    #[serde(default)]
    pub excludes: Option<RawCondition>,
}

/// One argument comparison (all comparisons of a rule must hold).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawArg {
    pub index: u64,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// Docker's rule conditions: capabilities, architectures, minimum kernel version.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawCondition {
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    #[serde(default)]
    pub arches: Option<Vec<String>>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// Parses profile text; `file` names the profile in errors.
pub(crate) fn parse(text: &str, file: &str) -> Result<RawProfile, SeccompError> {
    serde_json::from_str(text).map_err(|source| SeccompError::Json {
        file: file.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_docker_shape() {
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":null}],
                "syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW",
                  "args":[{"index":0,"value":2114060288,"op":"SCMP_CMP_MASKED_EQ"}],
                  "comment":"x","excludes":{"caps":["CAP_SYS_ADMIN"],"arches":["s390"]},
                  "includes":{"minKernel":"4.8"}}]}"#,
            "t.json",
        )
        .unwrap();
        let rule = &p.syscalls.unwrap()[0];
        assert_eq!(rule.args.as_ref().unwrap()[0].value, 2114060288);
        assert_eq!(
            rule.includes.as_ref().unwrap().min_kernel.as_deref(),
            Some("4.8")
        );
        assert!(rule.excludes.as_ref().unwrap().caps.is_some());
    }

    #[test]
    fn unknown_fields_are_errors_naming_file_and_field() {
        let err = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","arguments":[]}]}"#,
            "typo.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("typo.json") && err.contains("`arguments`"),
            "{err}"
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        let err = parse("{\"defaultAction\": ", "broken.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("malformed seccomp profile broken.json"),
            "{err}"
        );
        let err = parse("{}", "empty.json").unwrap_err().to_string();
        assert!(err.contains("`defaultAction`"), "{err}");
    }
}
