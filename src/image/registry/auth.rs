//! Registry authentication: `WWW-Authenticate` challenges, the anonymous or Basic-backed
//! bearer-token flow (Docker token spec: `GET realm?service=..&scope=..`, token from
//! `token` or `access_token`, `expires_in` defaulting to 60 s), plain Basic auth, token
//! realm checks against SSRF (go-containerregistry's `validateRealmURL`), and Docker
//! `config.json` credential files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::client::{self, Get, Kind, Transport};
use super::url::{encode_query_value, Url};
use super::RegistryError;

/// Token responses bigger than this are refused.
const MAX_TOKEN_BODY: u64 = 1 << 20;
/// `expires_in` when the token server does not say (Docker token spec).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A token this close to expiry (at most a quarter of its lifetime) is refreshed before use.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// Auth files bigger than this are refused.
const MAX_AUTH_FILE: u64 = 1 << 20;

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// `Basic base64(user:password)`.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The credentials for `hosts` (a registry and its aliases) in a Docker
    /// `config.json` or containers `auth.json`: `auths.<key>.auth` (base64 `user:pass`) or
    /// `auths.<key>.username`/`password`. Keys match when their host does, whatever the
    /// scheme or path (`https://host/v1/` matches `host`). `Ok(None)` if none matches.
    pub fn from_auth_file(
        path: &Path,
        hosts: &[&str],
    ) -> Result<Option<Credentials>, RegistryError> {
        let bad = |reason: String| RegistryError::AuthFile {
            path: path.to_path_buf(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.len() > MAX_AUTH_FILE {
            return Err(bad(format!("{} bytes is too big", meta.len())));
        }
        let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let file: AuthFile =
            serde_json::from_slice(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let Some(entry) = file
            .auths
            .iter()
            .find(|(key, _)| hosts.contains(&auth_key_host(key)))
            .map(|(_, entry)| entry)
        else {
            return Ok(None);
        };
        entry.credentials().map_err(bad)
    }
}

#[derive(serde::Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthEntry {
    fn credentials(&self) -> Result<Option<Credentials>, String> {
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let engines = [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
            ];
            let raw = engines
                .iter()
                .find_map(|e| e.decode(auth.trim()).ok())
                .ok_or("an 'auth' entry is not valid base64")?;
            let raw = String::from_utf8(raw).map_err(|_| "an 'auth' entry is not UTF-8")?;
            let (user, pass) = raw
                .split_once(':')
                .ok_or("an 'auth' entry is not base64 of user:password")?;
            return Ok(Some(Credentials::new(user, pass.trim_end_matches('\n'))));
        }
        if let (Some(user), Some(pass)) = (&self.username, &self.password) {
            return Ok(Some(Credentials::new(user, pass)));
        }
        if self.identitytoken.is_some() {
            return Err("identity tokens (OAuth2 refresh tokens) are not supported".into());
        }
        Ok(None)
    }
}

/// The host part of an auth file key: `https://host:5000/v1/` -> `host:5000` (Docker's
/// `ConvertToHostname`).
fn auth_key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// One `WWW-Authenticate` challenge: a scheme (lowercased) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value: one or more `Scheme k=v, k="quoted"` challenges.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let token_end = rest.find([' ', '=', ',', '\t']).unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start_matches([' ', '\t']);
        if token.is_empty() {
            break;
        }
        if let Some(value_part) = after.strip_prefix('=') {
            // A parameter of the current challenge.
            let (value, next) = parse_value(value_part.trim_start());
            if let Some(current) = out.last_mut() {
                current.params.insert(token.to_ascii_lowercase(), value);
            }
            rest = next;
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            rest = after;
        }
    }
    out
}

/// A quoted string (with `\` escapes) or a token; returns the value and the rest.
fn parse_value(text: &str) -> (String, &str) {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[i + 1..]),
                c => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = text.find([',', ' ', '\t']).unwrap_or(text.len());
        (text[..end].to_string(), &text[end..])
    }
}

/// Checks a token realm (and each redirect hop of a token request), as
/// go-containerregistry's `validateRealmURL`: https, or http when the registry itself is
/// plain http (loopback or `--insecure-registry`); realms on the registry's own host
/// are fine; otherwise no internal addresses for an https registry.
pub(crate) fn check_realm(realm: &Url, registry: &Url) -> Result<(), String> {
    let plain_registry = !registry.is_https();
    if !realm.is_https() && !plain_registry {
        return Err(format!(
            "token realm {realm} is not https (only loopback or --insecure-registry registries may use http)"
        ));
    }
    if realm.same_host_port(registry) || plain_registry {
        return Ok(());
    }
    if realm.is_internal_host() {
        return Err(format!(
            "token realm {realm} points at a private or local address"
        ));
    }
    Ok(())
}

/// What a bearer token was asked for, to ask again when it expires.
#[derive(Debug, Clone)]
struct Bearer {
    realm: Url,
    service: Option<String>,
    scopes: Vec<String>,
}

#[derive(Default)]
struct State {
    /// The `Authorization` value for registry requests.
    header: Option<String>,
    /// When the bearer token is to be refreshed (shortly before it expires).
    refresh_at: Option<Instant>,
    bearer: Option<Bearer>,
}

/// Authentication for one repository on one registry; shared by a pull's threads.
pub(crate) struct Auth {
    registry: Url,
    scope: String,
    credentials: Option<Credentials>,
    state: Mutex<State>,
}

impl Auth {
    pub fn new(registry: Url, repository: &str, credentials: Option<Credentials>) -> Auth {
        Auth {
            registry,
            scope: format!("repository:{repository}:pull"),
            credentials,
            state: Mutex::new(State::default()),
        }
    }

    /// The `Authorization` value to send now, refreshing an expiring bearer token.
    pub fn header(&self, transport: &Transport) -> Result<Option<String>, RegistryError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let expiring = state.refresh_at.is_some_and(|t| Instant::now() >= t);
        if expiring {
            if let Some(bearer) = state.bearer.clone() {
                self.fetch_token(transport, &bearer, &mut state)?;
            }
        }
        Ok(state.header.clone())
    }

    /// Reacts to a 401 from the registry: takes its challenge and gets a (new) token or
    /// switches to Basic. `sent` is the `Authorization` the refused request carried, so
    /// that a thread does not refresh again what another thread already refreshed.
    pub fn challenged(
        &self,
        transport: &Transport,
        url: &Url,
        www_authenticate: &[&str],
        sent: Option<&str>,
    ) -> Result<(), RegistryError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.header.as_deref() != sent {
            return Ok(());
        }
        let challenges: Vec<Challenge> = www_authenticate
            .iter()
            .flat_map(|h| parse_challenges(h))
            .collect();
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let bearer = self.bearer_from(url, bearer)?;
            return self.fetch_token(transport, &bearer, &mut state);
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return match (&self.credentials, &state.header) {
                (Some(creds), None) => {
                    state.header = Some(creds.basic_header());
                    Ok(())
                }
                (Some(_), Some(_)) => Err(RegistryError::Denied {
                    what: "credentials".to_string(),
                    status: 401,
                    url: url.to_string(),
                    detail: ": the registry refused the user name and password".to_string(),
                }),
                (None, _) => Err(RegistryError::AuthRequired {
                    url: url.to_string(),
                    detail: " (Basic)".to_string(),
                }),
            };
        }
        Err(RegistryError::AuthRequired {
            url: url.to_string(),
            detail: match www_authenticate.first() {
                Some(h) => format!(" (unsupported challenge '{h}')"),
                None => " (no WWW-Authenticate challenge)".to_string(),
            },
        })
    }

    fn bearer_from(&self, url: &Url, challenge: &Challenge) -> Result<Bearer, RegistryError> {
        let bad = |reason: String| RegistryError::Token {
            realm: challenge.params.get("realm").cloned().unwrap_or_default(),
            reason,
        };
        let realm_text = challenge
            .params
            .get("realm")
            .ok_or_else(|| bad(format!("the challenge from {url} has no realm")))?;
        let realm = Url::parse(realm_text).map_err(bad)?;
        check_realm(&realm, &self.registry).map_err(bad)?;
        let mut scopes = vec![self.scope.clone()];
        if let Some(extra) = challenge.params.get("scope") {
            for s in extra.split(' ').filter(|s| !s.is_empty()) {
                if !scopes.iter().any(|have| have == s) {
                    scopes.push(s.to_string());
                }
            }
        }
        Ok(Bearer {
            realm,
            service: challenge.params.get("service").cloned(),
            scopes,
        })
    }

    /// `GET realm?service=..&scope=..` (Basic credentials if any) and stores the token.
    fn fetch_token(
        &self,
        transport: &Transport,
        bearer: &Bearer,
        state: &mut State,
    ) -> Result<(), RegistryError> {
        let url = token_url(bearer);
        let basic = self.credentials.as_ref().map(Credentials::basic_header);
        let get = Get {
            url: url.clone(),
            accept: Some("application/json"),
            authorization: basic.as_deref(),
            kind: Kind::Document,
        };
        let registry = self.registry.clone();
        let check = move |_: &Url, next: &Url| check_realm(next, &registry);
        let (final_url, resp) = transport.send(&get, &check)?;
        let bad = |reason: String| RegistryError::Token {
            realm: bearer.realm.to_string(),
            reason,
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let detail = client::error_detail(resp);
            let who = if self.credentials.is_some() {
                "refused the credentials"
            } else {
                "refused an anonymous token"
            };
            return Err(bad(format!("{who} (status {status}){detail}")));
        }
        let body = client::read_capped(&final_url, resp, MAX_TOKEN_BODY)?
            .map_err(|size| bad(format!("response of {size} bytes is too big")))?;
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("invalid token response: {e}")))?;
        let value = token
            .token
            .or(token.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("the response has neither 'token' nor 'access_token'".into()))?;
        if value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(bad("the token contains spaces or control characters".into()));
        }
        let lifetime = token
            .expires_in
            .filter(|s| *s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        state.header = Some(format!("Bearer {value}"));
        state.refresh_at = Some(Instant::now() + lifetime - EXPIRY_MARGIN.min(lifetime / 4));
        state.bearer = Some(bearer.clone());
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The realm with `service` and one `scope` parameter per scope appended.
fn token_url(bearer: &Bearer) -> Url {
    let mut query = Vec::new();
    if let Some(service) = &bearer.service {
        query.push(format!("service={}", encode_query_value(service)));
    }
    for scope in &bearer.scopes {
        query.push(format!("scope={}", encode_query_value(scope)));
    }
    let path = bearer.realm.path_and_query();
    let sep = if path.contains('?') { '&' } else { '?' };
    bearer
        .realm
        .with_path(&format!("{path}{sep}{}", query.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.example/token");
        assert_eq!(c[0].params["service"], "registry.example");
        assert_eq!(c[0].params["scope"], "repository:a/b:pull");

        let c = parse_challenges(
            r#"Basic realm="x, y", Bearer realm=https://t/ , error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].params["realm"], "x, y");
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].params["realm"], "https://t/");
        assert_eq!(c[1].params["error"], "insufficient_scope");

        let c = parse_challenges(r#"Bearer realm="a\"b""#);
        assert_eq!(c[0].params["realm"], "a\"b");
        assert!(parse_challenges("").is_empty());
    }

    #[test]
    fn realms_are_checked() {
        let https_reg = Url::parse("https://registry.example/").unwrap();
        let ok = |realm: &str, reg: &Url| check_realm(&Url::parse(realm).unwrap(), reg);
        assert!(ok("https://auth.example/token", &https_reg).is_ok());
        assert!(ok("http://auth.example/token", &https_reg).is_err());
        assert!(ok("https://169.254.169.254/latest", &https_reg).is_err());
        assert!(ok("https://10.0.0.1/token", &https_reg).is_err());
        assert!(ok("https://localhost/token", &https_reg).is_err());
        let private_reg = Url::parse("https://10.0.0.5:5000/").unwrap();
        assert!(ok("https://10.0.0.5:5000/token", &private_reg).is_ok());
        let loopback = Url::parse("http://127.0.0.1:5000/").unwrap();
        assert!(ok("http://127.0.0.1:6000/token", &loopback).is_ok());
    }

    #[test]
    fn token_urls_carry_service_and_scopes() {
        let bearer = Bearer {
            realm: Url::parse("https://auth.example/token?x=1").unwrap(),
            service: Some("reg svc".into()),
            scopes: vec!["repository:a/b:pull".into(), "repository:c:pull".into()],
        };
        assert_eq!(
            token_url(&bearer).to_string(),
            "https://auth.example/token?x=1&service=reg%20svc&scope=repository%3Aa%2Fb%3Apull&scope=repository%3Ac%3Apull"
        );
    }

    #[test]
    fn auth_files_give_credentials_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://reg.example:5000/v1/":{{"auth":"{b64}"}},
                "other.example":{{"username":"bob","password":"pw"}},
                "tok.example":{{"identitytoken":"x"}}}},"credsStore":"desktop"}}"#
            ),
        )
        .unwrap();
        let creds = Credentials::from_auth_file(&path, &["reg.example:5000"]).unwrap();
        assert_eq!(creds, Some(Credentials::new("alice", "s3cr:et")));
        let creds = Credentials::from_auth_file(&path, &["other.example"]).unwrap();
        assert_eq!(creds, Some(Credentials::new("bob", "pw")));
        assert_eq!(
            Credentials::from_auth_file(&path, &["none.example"]).unwrap(),
            None
        );
        assert!(Credentials::from_auth_file(&path, &["tok.example"]).is_err());
        assert!(!format!("{:?}", Credentials::new("u", "hunter2")).contains("hunter2"));
        std::fs::write(&path, "{").unwrap();
        assert!(Credentials::from_auth_file(&path, &["x"]).is_err());
    }
}
