//! What Verint's interface asks of its settings (design §6), as pure checks the configuration
//! and the adapter share: its URLs, and the form of its API key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

/// Verint is reached over https; plain http only to this machine (the local simulator).
pub(crate) fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "{url} must use https (http is allowed only to a loopback address)"
                ))
            }
        }
        other => Err(format!("{url} has scheme {other:?}; expected https")),
    }
}

/// Decodes a base64url API key (padding tolerated); the error never repeats the key.
pub(crate) fn decode_key(key: &str) -> Result<Vec<u8>, String> {
    let trimmed = key.trim().trim_end_matches('=');
    match URL_SAFE_NO_PAD.decode(trimmed) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        Ok(_) => Err("the key is empty".into()),
        Err(_) => Err("the key is not base64url".into()),
    }
}
