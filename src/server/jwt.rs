//! Short-lived bearer tokens for browsers (beyond Judge0): a JWT signed by the operator's
//! backend with HS256 (shared secret), RS256 or EdDSA (public key, PEM), checked for its
//! signature, expiry (required), not-before, audience and a revocation list of `jti`s.
//! A valid token stands in for the AUTHN token; it does not grant AUTHZ.

use std::path::PathBuf;

use base64::Engine;
use ring::{hmac, signature};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum JwtError {
    #[error("not a JWT")]
    Malformed,
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("bad signature")]
    Signature,
    #[error("expired or without exp")]
    Expired,
    #[error("not valid yet")]
    NotYet,
    #[error("wrong audience")]
    Audience,
    #[error("revoked")]
    Revoked,
    #[error("public key {0}: {1}")]
    Key(String, String),
}

/// The verification keys and rules, from JWT_HS256_SECRET, JWT_PUBLIC_KEY_FILE,
/// JWT_AUDIENCE and JWT_REVOKED_FILE.
#[derive(Debug, Default, Clone)]
pub struct Verifier {
    pub hs256_secret: Option<Vec<u8>>,
    /// (alg, key bytes as ring wants them: PKCS#1 DER for RS256, 32 raw bytes for EdDSA).
    pub public_key: Option<(&'static str, Vec<u8>)>,
    pub audience: Option<String>,
    /// One revoked `jti` per line, re-read at each check.
    pub revoked_file: Option<PathBuf>,
}

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl Verifier {
    pub fn enabled(&self) -> bool {
        self.hs256_secret.is_some() || self.public_key.is_some()
    }

    /// Loads a PEM public key (SubjectPublicKeyInfo): RSA means RS256, Ed25519 EdDSA.
    pub fn load_public_key(path: &std::path::Path) -> Result<(&'static str, Vec<u8>), JwtError> {
        let err = |m: &str| JwtError::Key(path.display().to_string(), m.to_string());
        let pem = std::fs::read_to_string(path).map_err(|e| err(&e.to_string()))?;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|_| err("not PEM"))?;
        spki_key(&der)
            .ok_or_else(|| err("not an RSA or Ed25519 public key (PEM SubjectPublicKeyInfo)"))
    }

    /// Checks `token` at time `now` (seconds since the epoch); returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Value, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let json = |part: &str| -> Result<Value, JwtError> {
            let bytes = B64URL.decode(part).map_err(|_| JwtError::Malformed)?;
            serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
        };
        let header = json(h)?;
        let claims = json(p)?;
        let sig = B64URL.decode(s).map_err(|_| JwtError::Malformed)?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        let alg = header["alg"].as_str().unwrap_or("");
        self.check_signature(alg, signed, &sig)?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    fn check_signature(&self, alg: &str, signed: &[u8], sig: &[u8]) -> Result<(), JwtError> {
        match (alg, &self.hs256_secret, &self.public_key) {
            ("HS256", Some(secret), _) => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
                hmac::verify(&key, signed, sig).map_err(|_| JwtError::Signature)
            }
            (a, _, Some((kind, key))) if a == *kind => {
                let algorithm: &dyn signature::VerificationAlgorithm = match *kind {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    _ => &signature::ED25519,
                };
                signature::UnparsedPublicKey::new(algorithm, key)
                    .verify(signed, sig)
                    .map_err(|_| JwtError::Signature)
            }
            (a, _, _) => Err(JwtError::Algorithm(a.to_string())),
        }
    }

    fn check_claims(&self, c: &Value, now: i64) -> Result<(), JwtError> {
        match c["exp"].as_i64() {
            Some(exp) if exp > now => {}
            _ => return Err(JwtError::Expired),
        }
        if c["nbf"].as_i64().is_some_and(|nbf| nbf > now) {
            return Err(JwtError::NotYet);
        }
        if let Some(aud) = &self.audience {
            let ok = match &c["aud"] {
                Value::String(s) => s == aud,
                Value::Array(a) => a.iter().any(|v| v.as_str() == Some(aud)),
                _ => false,
            };
            if !ok {
                return Err(JwtError::Audience);
            }
        }
        if let (Some(file), Some(jti)) = (&self.revoked_file, c["jti"].as_str()) {
            let list = std::fs::read_to_string(file).unwrap_or_default();
            if list.lines().any(|l| l.trim() == jti) {
                return Err(JwtError::Revoked);
            }
        }
        Ok(())
    }
}

/// The key inside a DER SubjectPublicKeyInfo: RSA (PKCS#1 RSAPublicKey) or Ed25519 (32 bytes).
fn spki_key(der: &[u8]) -> Option<(&'static str, Vec<u8>)> {
    const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const ED25519_OID: &[u8] = &[0x2b, 0x65, 0x70];
    let (spki, _) = der_item(der, 0x30)?;
    let (alg_id, rest) = der_item(spki, 0x30)?;
    let (oid, _) = der_item(alg_id, 0x06)?;
    let (bits, _) = der_item(rest, 0x03)?;
    let key = bits.strip_prefix(&[0u8])?;
    match oid {
        RSA_OID => Some(("RS256", key.to_vec())),
        ED25519_OID if key.len() == 32 => Some(("EdDSA", key.to_vec())),
        _ => None,
    }
}

/// One DER item with the given tag: (its contents, what follows it).
fn der_item(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = der.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::KeyPair;

    fn sign_hs256(secret: &[u8], claims: &Value) -> String {
        let h = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let p = B64URL.encode(claims.to_string());
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let sig = hmac::sign(&key, format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", B64URL.encode(sig.as_ref()))
    }

    #[test]
    fn hs256_expiry_audience_and_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let revoked = dir.path().join("revoked");
        std::fs::write(&revoked, "bad-jti\n").unwrap();
        let v = Verifier {
            hs256_secret: Some(b"s3cret".to_vec()),
            audience: Some("judge".into()),
            revoked_file: Some(revoked),
            ..Verifier::default()
        };
        let ok = serde_json::json!({"exp": 200, "aud": "judge", "jti": "a"});
        assert!(v.verify(&sign_hs256(b"s3cret", &ok), 100).is_ok());
        assert_eq!(
            v.verify(&sign_hs256(b"other", &ok), 100),
            Err(JwtError::Signature)
        );
        assert_eq!(
            v.verify(&sign_hs256(b"s3cret", &ok), 300),
            Err(JwtError::Expired)
        );
        let no_exp = serde_json::json!({"aud": "judge"});
        assert_eq!(
            v.verify(&sign_hs256(b"s3cret", &no_exp), 1),
            Err(JwtError::Expired)
        );
        let aud = serde_json::json!({"exp": 200, "aud": ["x", "y"]});
        assert_eq!(
            v.verify(&sign_hs256(b"s3cret", &aud), 100),
            Err(JwtError::Audience)
        );
        let bad = serde_json::json!({"exp": 200, "aud": "judge", "jti": "bad-jti"});
        assert_eq!(
            v.verify(&sign_hs256(b"s3cret", &bad), 100),
            Err(JwtError::Revoked)
        );
        let none = format!(
            "{}.{}.",
            B64URL.encode(br#"{"alg":"none"}"#),
            B64URL.encode(ok.to_string())
        );
        assert_eq!(
            v.verify(&none, 100),
            Err(JwtError::Algorithm("none".into()))
        );
        assert_eq!(v.verify("a.b", 100), Err(JwtError::Malformed));
    }

    #[test]
    fn eddsa_with_a_pem_public_key() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&spki)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem).unwrap();
        let key = Verifier::load_public_key(&path).unwrap();
        assert_eq!(key.0, "EdDSA");
        let v = Verifier {
            public_key: Some(key),
            ..Verifier::default()
        };
        let h = B64URL.encode(br#"{"alg":"EdDSA"}"#);
        let p = B64URL.encode(br#"{"exp":99}"#);
        let sig = pair.sign(format!("{h}.{p}").as_bytes());
        let token = format!("{h}.{p}.{}", B64URL.encode(sig.as_ref()));
        assert!(v.verify(&token, 10).is_ok());
        let hs = format!(
            "{}.{p}.{}",
            B64URL.encode(br#"{"alg":"HS256"}"#),
            B64URL.encode(sig.as_ref())
        );
        assert!(v.verify(&hs, 10).is_err(), "no HS256 secret configured");
    }
}
