//! HTTP basic authentication (RFC 7617) of query requests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The realm named in `WWW-Authenticate` when credentials are missing.
pub(crate) const REALM_CHALLENGE: &str = "Basic realm=\"Traffic Sentinel\"";

/// Whether the `Authorization` header value `given` carries exactly `user`
/// and `password`: scheme `Basic` (any case), then the standard base64 of
/// `user:password`.
pub(crate) fn authorization_matches(given: &[u8], user: &str, password: &str) -> bool {
    let Ok(given) = std::str::from_utf8(given) else {
        return false;
    };
    let Some((scheme, encoded)) = given.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    // The user ends at the first colon; the password may hold more.
    std::str::from_utf8(&decoded)
        .ok()
        .and_then(|pair| pair.split_once(':'))
        .is_some_and(|(u, p)| u == user && p == password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_match_only_themselves() {
        // RFC 7617's example.
        let header = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==";
        assert!(authorization_matches(
            header.as_bytes(),
            "Aladdin",
            "open sesame"
        ));
        assert!(authorization_matches(
            b"basic  QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Aladdin",
            "open sesame"
        ));
        assert!(!authorization_matches(
            header.as_bytes(),
            "Aladdin",
            "open sesam"
        ));
        assert!(!authorization_matches(
            header.as_bytes(),
            "aladdin",
            "open sesame"
        ));
        assert!(!authorization_matches(
            b"Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Aladdin",
            "open sesame"
        ));
        assert!(!authorization_matches(
            b"Basic !!!",
            "Aladdin",
            "open sesame"
        ));
        assert!(!authorization_matches(b"Basic", "Aladdin", "open sesame"));
        let with_colon = format!("Basic {}", STANDARD.encode("u:p:q"));
        assert!(authorization_matches(with_colon.as_bytes(), "u", "p:q"));
    }
}
