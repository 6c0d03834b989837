//! Verint's API-key authentication (design §6): `Vrnt-1-HMAC-SHA256` over the salt, method,
//! path and query, issue time and the `verint-` headers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// An API key: its id and the base64url key bytes.
#[derive(Clone)]
pub struct ApiKey {
    pub key_id: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key_id", &self.key_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl ApiKey {
    /// Whether both hold the same key bytes.
    pub(crate) fn same_secret(&self, other: &ApiKey) -> bool {
        self.key == other.key
    }

    pub fn new(key_id: impl Into<String>, key: &SecretString) -> Result<Self, String> {
        Ok(ApiKey {
            key_id: key_id.into(),
            key: crate::domain::verint::decode_key(key.expose_secret())?,
        })
    }

    /// The `Authorization` header value for one request. `verint_headers` are the request's
    /// headers whose names start with `verint-`, in the order they are sent.
    pub fn authorization(
        &self,
        method: &str,
        path_and_query: &str,
        verint_headers: &[(&str, &str)],
        salt: &[u8; 16],
        iat: DateTime<Utc>,
    ) -> String {
        let salt = URL_SAFE_NO_PAD.encode(salt);
        let iat = crate::domain::time::format_ts(iat);
        let sig = self.signature(&string_to_sign(
            &salt,
            method,
            path_and_query,
            &iat,
            verint_headers,
        ));
        format!(
            "Vrnt-1-HMAC-SHA256 salt={salt},iat={iat},kid={},sig={sig}",
            self.key_id
        )
    }

    fn signature(&self, string_to_sign: &str) -> String {
        // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(string_to_sign.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// `salt "\n" METHOD "\n" path_and_query "\n" iat "\n" canonical_headers "\n"`.
pub fn string_to_sign(
    salt: &str,
    method: &str,
    path_and_query: &str,
    iat: &str,
    verint_headers: &[(&str, &str)],
) -> String {
    let canonical: String = verint_headers
        .iter()
        .map(|(n, v)| format!("{n}:{v}\n"))
        .collect::<String>()
        .to_lowercase();
    format!("{salt}\n{method}\n{path_and_query}\n{iat}\n{canonical}\n")
}

/// 16 random bytes for a request's salt.
pub(crate) fn new_salt() -> [u8; 16] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_ts;

    /// Computed independently with Python's `hmac`, `hashlib` and `base64`:
    /// ```text
    /// key = base64.urlsafe_b64decode("c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    /// sts = "AAECAwQFBgcICQoLDA0ODw\nGET\n/das/contacts?from=2024-05-14T00:00:00Z&to=2024-05-15T00:00:00Z&state=completed&limit=500\n2024-05-14T12:00:00Z\nverint-tenant:acme\n\n"
    /// base64.urlsafe_b64encode(hmac.new(key, sts.encode(), hashlib.sha256).digest()).rstrip(b"=")
    /// ```
    #[test]
    fn signing_matches_a_fixed_vector() {
        let key = ApiKey::new("kid-1", &SecretString::from("c2VjcmV0LWtleS1mb3ItdGVzdHM"))
            .expect("valid key");
        let salt: [u8; 16] = core::array::from_fn(|i| i as u8);
        let header = key.authorization(
            "GET",
            "/das/contacts?from=2024-05-14T00:00:00Z&to=2024-05-15T00:00:00Z&state=completed&limit=500",
            &[("Verint-Tenant", "ACME")],
            &salt,
            parse_ts("2024-05-14T12:00:00Z").expect("valid"),
        );
        assert_eq!(
            header,
            format!(
                "Vrnt-1-HMAC-SHA256 salt=AAECAwQFBgcICQoLDA0ODw,iat=2024-05-14T12:00:00Z,kid=kid-1,sig={}",
                EXPECTED_SIG
            )
        );
    }

    const EXPECTED_SIG: &str = "wpFmis74s9qPYEAwr5sspAWE9Qis_D2s9gojTgyx0ys";

    #[test]
    fn without_verint_headers_the_canonical_part_is_empty() {
        assert_eq!(
            string_to_sign("s", "POST", "/x", "t", &[]),
            "s\nPOST\n/x\nt\n\n"
        );
    }

    #[test]
    fn the_debug_form_never_shows_the_key() {
        let key = ApiKey::new("kid-1", &SecretString::from("c2VjcmV0LWtleS1mb3ItdGVzdHM"))
            .expect("valid key");
        assert!(!format!("{key:?}").contains("c2Vj"));
    }
}
