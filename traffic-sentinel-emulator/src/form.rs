//! The query form of `/inmsf/Query`: `script`, `resultFormat` and
//! `authenticate`, as `application/x-www-form-urlencoded` text, sent as a
//! POST body (CloudStack 4.10 and later) or as a GET query string
//! (CloudStack 4.9 and older).

/// The fields of a query form; unknown fields are ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct QueryForm {
    pub(crate) script: Option<String>,
    pub(crate) authenticate: Option<String>,
    pub(crate) result_format: Option<String>,
}

impl QueryForm {
    /// Decodes `text` (`&`-separated `key=value` pairs, `+` for a space,
    /// `%XX` escapes) as `url::form_urlencoded::parse` does: bytes that are
    /// not UTF-8 and malformed escapes are kept as the replacement character
    /// and as written, so such a script is then refused by the script
    /// reader. Values of unknown fields are not decoded.
    ///
    /// # Errors
    ///
    /// A one-line message when a known field is given twice.
    pub(crate) fn parse(text: &[u8]) -> Result<QueryForm, String> {
        let mut form = QueryForm::default();
        for pair in text.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            let key = decode(key);
            let slot = match key.as_str() {
                "script" => &mut form.script,
                "authenticate" => &mut form.authenticate,
                "resultFormat" => &mut form.result_format,
                _ => continue,
            };
            if slot.is_some() {
                return Err(format!("form field \"{key}\" given twice"));
            }
            *slot = Some(decode(value));
        }
        Ok(form)
    }
}

/// One form-encoded key or value: `+` as a space, `%XX` as its byte (a
/// malformed escape as written), then the bytes as UTF-8 with U+FFFD for
/// what is not.
///
/// Why not `url::form_urlencoded::parse`: it copies a value three times
/// (`+`, escapes, UTF-8), one byte at a time for the escapes, which was
/// 6.6% of a 10k-address collection cycle's CPU (BENCHMARKS.md §3); this
/// copies runs between escapes at once, in one pass. A property test holds
/// it to `url`'s.
fn decode(text: &[u8]) -> String {
    let hex = |digit: u8| char::from(digit).to_digit(16);
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.iter().position(|&b| b == b'+' || b == b'%') {
        bytes.extend_from_slice(&rest[..at]);
        rest = &rest[at..];
        let escaped = match rest {
            [b'%', high, low, ..] => hex(*high).zip(hex(*low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (rest, escaped) {
            ([b'+', after @ ..], _) => {
                bytes.push(b' ');
                rest = after;
            }
            ([_, _, _, after @ ..], Some(byte)) => {
                // Two hex digits make at most 0xff.
                bytes.push(byte as u8);
                rest = after;
            }
            (_, _) => {
                bytes.push(b'%');
                rest = &rest[1..];
            }
        }
    }
    bytes.extend_from_slice(rest);
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

/// Whether a `Content-Type` value names a form
/// (`application/x-www-form-urlencoded`, any parameters, any case).
pub(crate) fn is_form_content_type(value: &[u8]) -> bool {
    let value = String::from_utf8_lossy(value);
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_plus_percent_order_and_unknown_fields() {
        let form = QueryForm::parse(
            b"resultFormat=txt&x=1&&script=var+n%20%3D+0%3B%0A&authenticate=basic",
        )
        .unwrap();
        assert_eq!(form.script.as_deref(), Some("var n = 0;\n"));
        assert_eq!(form.authenticate.as_deref(), Some("basic"));
        assert_eq!(form.result_format.as_deref(), Some("txt"));
        assert!(
            QueryForm::parse(b"script=a&script=b")
                .unwrap_err()
                .contains("given twice")
        );
        // Malformed escapes and bytes that are not UTF-8 reach the script
        // reader, which cannot read them.
        assert_eq!(
            QueryForm::parse(b"script=%zz%4").unwrap().script.as_deref(),
            Some("%zz%4")
        );
        assert_eq!(
            QueryForm::parse(b"script=%ff").unwrap().script.as_deref(),
            Some("\u{fffd}")
        );
        assert_eq!(
            QueryForm::parse(b"script").unwrap().script.as_deref(),
            Some("")
        );
    }

    proptest::proptest! {
        /// Every field decodes as `url::form_urlencoded::parse` decodes it.
        #[test]
        fn fields_decode_as_url_decodes_them(
            value in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"%+&=2Cfz0\xff\xc3\xa9 ".to_vec()),
                    proptest::prelude::any::<u8>(),
                ],
                0..40,
            ),
        ) {
            let mut text = b"script=".to_vec();
            text.extend_from_slice(&value);
            let form = QueryForm::parse(&text);
            let theirs: Vec<(String, String)> = url::form_urlencoded::parse(&text)
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect();
            let scripts: Vec<&String> =
                theirs.iter().filter(|(key, _)| key == "script").map(|(_, v)| v).collect();
            match form {
                Ok(form) => {
                    proptest::prop_assert!(scripts.len() <= 1);
                    proptest::prop_assert_eq!(form.script.as_ref(), scripts.first().copied());
                }
                Err(_) => proptest::prop_assert!(scripts.len() > 1),
            }
        }
    }

    #[test]
    fn form_content_types() {
        for value in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-URLEncoded; charset=UTF-8",
        ] {
            assert!(is_form_content_type(value.as_bytes()), "{value}");
        }
        assert!(!is_form_content_type(b"text/plain"));
    }
}
