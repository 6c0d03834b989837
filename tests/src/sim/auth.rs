//! Verint's API-key authentication (design §6), both sides: the simulator verifies with
//! [`verify`], tests and tools sign with [`authorization`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use axum::http::{self, HeaderMap};

type HmacSha256 = Hmac<Sha256>;

/// The scheme word that opens the `Authorization` header.
pub const SCHEME: &str = "Vrnt-1-HMAC-SHA256";
/// How far `iat` may be from the server's clock, either way.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(5);
/// `iat`'s only accepted form.
pub const IAT_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Why a request was refused; the message goes in the 401 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed,
    UnknownKey,
    Stale,
    BadSignature,
}

impl AuthError {
    pub fn message(self) -> &'static str {
        match self {
            AuthError::Missing => "missing Authorization header",
            AuthError::Malformed => "malformed Authorization header",
            AuthError::UnknownKey => "unknown key id",
            AuthError::Stale => "iat is more than 5 minutes from the server's clock",
            AuthError::BadSignature => "signature does not match",
        }
    }
}

/// The four parameters of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub salt: String,
    pub iat: String,
    pub kid: String,
    pub sig: String,
}

/// `salt "\n" METHOD "\n" path_and_query "\n" iat "\n" canonical_headers "\n"`.
pub fn string_to_sign(
    salt: &str,
    method: &str,
    path_and_query: &str,
    iat: &str,
    canonical_headers: &str,
) -> String {
    format!("{salt}\n{method}\n{path_and_query}\n{iat}\n{canonical_headers}\n")
}

/// Every header whose name starts with `verint-`, in the order given, `name ":" value "\n"`,
/// the whole string lowercased.
pub fn canonical_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut out = String::new();
    for (name, value) in headers {
        if name.to_ascii_lowercase().starts_with("verint-") {
            out.push_str(name);
            out.push(':');
            out.push_str(&String::from_utf8_lossy(value));
            out.push('\n');
        }
    }
    out.to_lowercase()
}

/// base64url (no padding) of HMAC-SHA256(key, string_to_sign).
pub fn signature(key: &[u8], string_to_sign: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(string_to_sign.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The whole `Authorization` value for a request, given the api key as base64url.
pub fn authorization(
    key_id: &str,
    api_key: &str,
    method: &str,
    path_and_query: &str,
    canonical_headers: &str,
    salt: &str,
    iat: &str,
) -> anyhow::Result<String> {
    let key = URL_SAFE_NO_PAD.decode(api_key.trim_end_matches('='))?;
    let sig = signature(
        &key,
        &string_to_sign(salt, method, path_and_query, iat, canonical_headers),
    );
    Ok(format!(
        "{SCHEME} salt={salt},iat={iat},kid={key_id},sig={sig}"
    ))
}

/// Signs with a random salt and the current time; what a client does.
pub fn authorization_now(
    key_id: &str,
    api_key: &str,
    method: &str,
    path_and_query: &str,
) -> anyhow::Result<String> {
    let salt = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    let iat = Utc::now().format(IAT_FORMAT).to_string();
    authorization(key_id, api_key, method, path_and_query, "", &salt, &iat)
}

pub fn parse_authorization(value: &str) -> Option<Credentials> {
    let rest = value.strip_prefix(SCHEME)?.strip_prefix(' ')?;
    let (mut salt, mut iat, mut kid, mut sig) = (None, None, None, None);
    for item in rest.split(',') {
        let (k, v) = item.trim().split_once('=')?;
        let slot = match k {
            "salt" => &mut salt,
            "iat" => &mut iat,
            "kid" => &mut kid,
            "sig" => &mut sig,
            _ => return None,
        };
        if slot.replace(v.to_owned()).is_some() {
            return None;
        }
    }
    Some(Credentials {
        salt: salt?,
        iat: iat?,
        kid: kid?,
        sig: sig?,
    })
}

/// Checks a request against the one known key. `path_and_query` must be the raw request
/// target as received, not a re-encoded one.
pub fn verify(
    key_id: &str,
    key: &[u8],
    now: DateTime<Utc>,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Result<(), AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let creds = parse_authorization(value).ok_or(AuthError::Malformed)?;
    if creds.kid != key_id {
        return Err(AuthError::UnknownKey);
    }
    let iat = NaiveDateTime::parse_from_str(&creds.iat, IAT_FORMAT)
        .map_err(|_| AuthError::Malformed)?
        .and_utc();
    if (now - iat).abs() > MAX_SKEW {
        return Err(AuthError::Stale);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(&creds.sig)
        .map_err(|_| AuthError::BadSignature)?;
    let canonical = canonical_headers(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    let sts = string_to_sign(&creds.salt, method, path_and_query, &creds.iat, &canonical);
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(sts.as_bytes());
    mac.verify_slice(&sig).map_err(|_| AuthError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    // Computed once with Python's hmac/hashlib/base64, independently of this code.
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // bytes 0..32
    const SALT: &str = "c2FsdHNhbHRzYWx0c2FsdA";
    const IAT: &str = "2024-05-14T14:03:00Z";
    const PQ: &str = "/das/contacts?from=2024-05-14T00%3A00%3A00Z&to=2024-05-14T01%3A00%3A00Z&state=completed&limit=100";
    const SIG_WITH_HEADERS: &str = "BMBGw8OwFE84cKpUDAg-YqQH_RZzdrhPqzYXGRgh9-M";
    const SIG_NO_HEADERS: &str = "OVwyAStKvqPZOMZBZMrFAZnJ68ny93SQ7DiPaWk3s9g";

    fn key() -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(KEY).expect("test key is base64url")
    }

    #[test]
    fn the_signature_matches_an_independent_implementation() {
        let canon = canonical_headers([
            ("Verint-Tenant", b"ACME".as_slice()),
            ("content-type", b"application/json".as_slice()),
            ("verint-request-id", b"Abc-123".as_slice()),
        ]);
        assert_eq!(canon, "verint-tenant:acme\nverint-request-id:abc-123\n");
        let sts = string_to_sign(SALT, "GET", PQ, IAT, &canon);
        assert_eq!(signature(&key(), &sts), SIG_WITH_HEADERS);
        let header = authorization("local-key", KEY, "GET", PQ, "", SALT, IAT).expect("signs");
        assert_eq!(
            header,
            format!("{SCHEME} salt={SALT},iat={IAT},kid=local-key,sig={SIG_NO_HEADERS}")
        );
    }

    #[test]
    fn verify_accepts_the_fixed_vector_and_rejects_tampering() {
        let now = NaiveDateTime::parse_from_str(IAT, IAT_FORMAT)
            .expect("iat parses")
            .and_utc();
        let mut headers = HeaderMap::new();
        let auth = format!("{SCHEME} salt={SALT},iat={IAT},kid=local-key,sig={SIG_WITH_HEADERS}");
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&auth).expect("ascii"),
        );
        headers.insert("verint-tenant", HeaderValue::from_static("ACME"));
        headers.insert("verint-request-id", HeaderValue::from_static("Abc-123"));
        assert_eq!(
            verify("local-key", &key(), now, "GET", PQ, &headers),
            Ok(())
        );
        assert_eq!(
            verify(
                "local-key",
                &key(),
                now,
                "GET",
                &PQ.replace("100", "101"),
                &headers
            ),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify("other", &key(), now, "GET", PQ, &headers),
            Err(AuthError::UnknownKey)
        );
        assert_eq!(
            verify(
                "local-key",
                &key(),
                now + TimeDelta::seconds(301),
                "GET",
                PQ,
                &headers
            ),
            Err(AuthError::Stale)
        );
        assert_eq!(
            verify("local-key", &key(), now, "GET", PQ, &HeaderMap::new()),
            Err(AuthError::Missing)
        );
    }
}
