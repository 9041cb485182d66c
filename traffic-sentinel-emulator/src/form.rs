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
    /// `%XX` escapes) with `url::form_urlencoded`: bytes that are not UTF-8
    /// and malformed escapes are kept as the replacement character and as
    /// written, so such a script is then refused by the script reader.
    ///
    /// # Errors
    ///
    /// A one-line message when a known field is given twice.
    pub(crate) fn parse(text: &[u8]) -> Result<QueryForm, String> {
        let mut form = QueryForm::default();
        for (key, value) in url::form_urlencoded::parse(text) {
            let slot = match key.as_ref() {
                "script" => &mut form.script,
                "authenticate" => &mut form.authenticate,
                "resultFormat" => &mut form.result_format,
                _ => continue,
            };
            if slot.is_some() {
                return Err(format!("form field \"{key}\" given twice"));
            }
            *slot = Some(value.into_owned());
        }
        Ok(form)
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
