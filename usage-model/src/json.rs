//! A small, strict JSON scanner for one line of text, enough to read one flat
//! object per line (RFC 8259 grammar; no extensions).
//!
//! The scanner walks a `&str` by byte position. Every error carries the byte
//! position it was found at, which callers turn into a 1-based column.

use std::borrow::Cow;

/// How deep arrays and objects may nest inside a skipped value.
pub(crate) const MAX_DEPTH: usize = 64;

/// A syntax error at a byte position of the scanned text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// Byte position in the text where the problem was found.
    pub(crate) pos: usize,
    /// What was wrong, lowercase, with the offending text quoted.
    pub(crate) reason: String,
}

/// The kind of JSON value a byte starts, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueKind {
    String,
    Number,
    Boolean,
    Null,
    Object,
    Array,
}

impl ValueKind {
    /// The kind of value that starts with `byte`, or `None` when no JSON
    /// value starts with it.
    pub(crate) fn of(byte: u8) -> Option<ValueKind> {
        match byte {
            b'"' => Some(ValueKind::String),
            b'-' | b'0'..=b'9' => Some(ValueKind::Number),
            b't' | b'f' => Some(ValueKind::Boolean),
            b'n' => Some(ValueKind::Null),
            b'{' => Some(ValueKind::Object),
            b'[' => Some(ValueKind::Array),
            _ => None,
        }
    }

    /// The kind with an article, as in "found a string".
    pub(crate) fn with_article(self) -> &'static str {
        match self {
            ValueKind::String => "a string",
            ValueKind::Number => "a number",
            ValueKind::Boolean => "a boolean",
            ValueKind::Null => "null",
            ValueKind::Object => "an object",
            ValueKind::Array => "an array",
        }
    }
}

/// Why a number token is not a JSON number, or `None` when it is one.
pub(crate) fn number_syntax_error(token: &str) -> Option<&'static str> {
    let b = token.as_bytes();
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => {
            i += 1;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                return Some("leading zeros are not allowed");
            }
        }
        Some(b'1'..=b'9') => i = digits_from(i),
        _ => return Some("a digit must start the integer part"),
    }
    if b.get(i) == Some(&b'.') {
        let end = digits_from(i + 1);
        if end == i + 1 {
            return Some("a digit must follow the decimal point");
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits_from(i);
        if end == i {
            return Some("a digit must follow the exponent marker");
        }
        i = end;
    }
    (i != b.len()).then_some("not a number")
}

/// A cursor over one line of text.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, pos: 0 }
    }

    /// The current byte position.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The text from the current position on.
    pub(crate) fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// The byte at the current position, if any.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Skips JSON whitespace: space, tab, line feed, carriage return.
    pub(crate) fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// An error at the current position.
    pub(crate) fn error(&self, reason: impl Into<String>) -> SyntaxError {
        SyntaxError {
            pos: self.pos,
            reason: reason.into(),
        }
    }

    /// What the current position holds, for "found …" messages: the next
    /// character quoted, or "end of line".
    pub(crate) fn found(&self) -> String {
        match self.rest().chars().next() {
            Some(c) => format!("{c:?}"),
            None => "end of line".to_owned(),
        }
    }

    /// Consumes `byte`, or fails with "expected {what}, found …".
    pub(crate) fn expect(&mut self, byte: u8, what: &str) -> Result<(), SyntaxError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", self.found())))
        }
    }

    /// Reads a string whose opening quote is at the current position,
    /// decoding every escape.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        let open = self.pos;
        self.expect(b'"', "'\"'")?;
        let bytes = self.text.as_bytes();
        let mut decoded: Option<String> = None;
        let mut run_start = self.pos;
        loop {
            let Some(&byte) = bytes.get(self.pos) else {
                return Err(SyntaxError {
                    pos: open,
                    reason: "unterminated string".to_owned(),
                });
            };
            match byte {
                b'"' => {
                    let run = &self.text[run_start..self.pos];
                    self.pos += 1;
                    return Ok(match decoded {
                        None => Cow::Borrowed(run),
                        Some(mut s) => {
                            s.push_str(run);
                            Cow::Owned(s)
                        }
                    });
                }
                b'\\' => {
                    let s = decoded.get_or_insert_with(String::new);
                    s.push_str(&self.text[run_start..self.pos]);
                    let c = self.escape()?;
                    s.push(c);
                    run_start = self.pos;
                }
                0x00..=0x1f => {
                    return Err(self.error(format!(
                        "unescaped control character U+{byte:04X} in string"
                    )));
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Decodes the escape whose backslash is at the current position.
    fn escape(&mut self) -> Result<char, SyntaxError> {
        let backslash = self.pos;
        self.pos += 1;
        let Some(next) = self.rest().chars().next() else {
            return Err(SyntaxError {
                pos: backslash,
                reason: "unterminated string".to_owned(),
            });
        };
        self.pos += next.len_utf8();
        let simple = match next {
            '"' => Some('"'),
            '\\' => Some('\\'),
            '/' => Some('/'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'u' => None,
            other if other.is_control() => {
                return Err(SyntaxError {
                    pos: backslash,
                    reason: format!(
                        "invalid escape: control character U+{:04X} after a backslash",
                        u32::from(other)
                    ),
                });
            }
            other => {
                return Err(SyntaxError {
                    pos: backslash,
                    reason: format!("invalid escape \"\\{other}\""),
                });
            }
        };
        if let Some(c) = simple {
            return Ok(c);
        }
        let first = self.hex4(backslash)?;
        let code = match first {
            0xD800..=0xDBFF => {
                let low_at = self.pos;
                let low = if self.rest().starts_with("\\u") {
                    self.pos += 2;
                    Some(self.hex4(low_at)?)
                } else {
                    None
                };
                match low {
                    Some(low @ 0xDC00..=0xDFFF) => {
                        0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    _ => {
                        return Err(SyntaxError {
                            pos: backslash,
                            reason: format!("unpaired surrogate \"\\u{first:04X}\" in string"),
                        });
                    }
                }
            }
            0xDC00..=0xDFFF => {
                return Err(SyntaxError {
                    pos: backslash,
                    reason: format!("unpaired surrogate \"\\u{first:04X}\" in string"),
                });
            }
            _ => u32::from(first),
        };
        char::from_u32(code).ok_or_else(|| SyntaxError {
            pos: backslash,
            reason: format!("invalid escape for code point U+{code:04X}"),
        })
    }

    /// Reads the 4 hex digits of a `\u` escape that began at `escape_at`.
    fn hex4(&mut self, escape_at: usize) -> Result<u16, SyntaxError> {
        let digits = self.text.as_bytes().get(self.pos..self.pos + 4);
        match digits {
            Some(d) if d.iter().all(u8::is_ascii_hexdigit) => {
                let text = &self.text[self.pos..self.pos + 4];
                self.pos += 4;
                u16::from_str_radix(text, 16).map_err(|_| SyntaxError {
                    pos: escape_at,
                    reason: format!("invalid escape \"\\u{text}\""),
                })
            }
            _ => {
                let rest = &self.text.as_bytes()[self.pos..];
                let hex = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
                Err(SyntaxError {
                    pos: escape_at,
                    reason: format!(
                        "invalid escape \"\\u{}\": 4 hex digits must follow \\u",
                        &self.text[self.pos..self.pos + hex]
                    ),
                })
            }
        }
    }

    /// Reads the maximal run of number characters at the current position and
    /// returns it unchecked; see [`number_syntax_error`].
    pub(crate) fn number_token(&mut self) -> &'a str {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// Reads a number and checks it against the JSON grammar.
    pub(crate) fn number(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.pos;
        let token = self.number_token();
        match number_syntax_error(token) {
            None => Ok(token),
            Some(why) => Err(SyntaxError {
                pos: start,
                reason: format!("invalid number {token:?}: {why}"),
            }),
        }
    }

    /// Reads `true`, `false` or `null` at the current position.
    pub(crate) fn literal(&mut self) -> Result<&'static str, SyntaxError> {
        for word in ["true", "false", "null"] {
            if self.rest().starts_with(word) {
                self.pos += word.len();
                return Ok(word);
            }
        }
        let end = self
            .rest()
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(self.text.len(), |i| self.pos + i);
        let word = &self.text[self.pos..end];
        let word = if word.is_empty() {
            &self.text[self.pos..]
        } else {
            word
        };
        Err(self.error(format!("invalid literal {word:?}")))
    }

    /// Reads and checks any value, nested `depth` levels deep, discarding it.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Result<(), SyntaxError> {
        let kind = self.peek().and_then(ValueKind::of);
        match kind {
            Some(ValueKind::String) => self.string().map(drop),
            Some(ValueKind::Number) => self.number().map(drop),
            Some(ValueKind::Boolean | ValueKind::Null) => self.literal().map(drop),
            Some(ValueKind::Object) => self.skip_container(depth, b'}'),
            Some(ValueKind::Array) => self.skip_container(depth, b']'),
            None => Err(self.error(format!("expected a value, found {}", self.found()))),
        }
    }

    /// Reads and checks an object or array whose opening bracket is at the
    /// current position.
    fn skip_container(&mut self, depth: usize, close: u8) -> Result<(), SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(format!("values nest deeper than {MAX_DEPTH} levels")));
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        let is_object = close == b'}';
        loop {
            if is_object {
                if self.peek() != Some(b'"') {
                    let found = self.found();
                    return Err(self.error(format!("expected a key string, found {found}")));
                }
                self.string()?;
                self.skip_whitespace();
                self.expect(b':', "':' after a key")?;
                self.skip_whitespace();
            }
            self.skip_value(depth + 1)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_whitespace();
                }
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => {
                    let close = char::from(close);
                    let found = self.found();
                    return Err(self.error(format!("expected ',' or '{close}', found {found}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> Result<String, SyntaxError> {
        let mut sc = Scanner::new(text);
        let s = sc.string()?.into_owned();
        assert_eq!(sc.pos(), text.len(), "string must end the text {text:?}");
        Ok(s)
    }

    fn skip(text: &str) -> Result<(), SyntaxError> {
        let mut sc = Scanner::new(text);
        sc.skip_value(0)?;
        assert_eq!(sc.rest(), "", "value must end the text {text:?}");
        Ok(())
    }

    #[test]
    fn decodes_every_escape() {
        assert_eq!(string(r#""plain""#).unwrap(), "plain");
        assert_eq!(
            string(r#""q\" b\\ s\/ \b\f\n\r\t""#).unwrap(),
            "q\" b\\ s/ \u{8}\u{c}\n\r\t"
        );
        assert_eq!(string(r#""\u0041\u00e9\u20AC""#).unwrap(), "Aé€");
        assert_eq!(string(r#""\ud83d\ude00!""#).unwrap(), "😀!");
        assert_eq!(string("\"héllo wörld 😀\"").unwrap(), "héllo wörld 😀");
        assert_eq!(string(r#""\u0000""#).unwrap(), "\0");
    }

    #[test]
    fn refuses_bad_strings() {
        let cases = [
            (r#""abc"#, 0, "unterminated string"),
            (r#""ab\"#, 3, "unterminated string"),
            (r#""a\x""#, 2, r#"invalid escape "\x""#),
            (
                r#""a\u12""#,
                2,
                r#"invalid escape "\u12": 4 hex digits must follow \u"#,
            ),
            (
                "\"a\\\tb\"",
                2,
                "invalid escape: control character U+0009 after a backslash",
            ),
            (r#""\uD800""#, 1, r#"unpaired surrogate "\uD800" in string"#),
            (
                r#""\uD800\u0041""#,
                1,
                r#"unpaired surrogate "\uD800" in string"#,
            ),
            (r#""\uDC00""#, 1, r#"unpaired surrogate "\uDC00" in string"#),
            (
                "\"a\tb\"",
                2,
                "unescaped control character U+0009 in string",
            ),
        ];
        for (text, pos, reason) in cases {
            let err = string(text).unwrap_err();
            assert_eq!((err.pos, err.reason.as_str()), (pos, reason), "{text:?}");
        }
    }

    #[test]
    fn number_grammar() {
        for ok in [
            "0", "-0", "17", "-17", "1.5", "0.25", "1e3", "1E+3", "-2.5e-3",
        ] {
            assert_eq!(number_syntax_error(ok), None, "{ok:?}");
        }
        for bad in [
            "", "-", "01", "-01", "1.", ".5", "1e", "1e+", "+1", "1.2.3", "1-2", "--1",
        ] {
            assert!(number_syntax_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn skips_valid_values() {
        for text in [
            "null",
            "true",
            "false",
            "-1.5e10",
            r#""s""#,
            "[]",
            "{}",
            r#"[1, "two", [3, {"four": null}], {}]"#,
            r#"{ "a" : { "b" : [ true , false ] } , "c" : 1 }"#,
        ] {
            assert_eq!(skip(text), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn refuses_invalid_values() {
        for text in [
            "nul",
            "tru",
            "True",
            "[1,]",
            "[1 2]",
            "{,}",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            "{1:2}",
            "[",
            "{",
            "'s'",
            "01",
            "",
        ] {
            assert!(skip(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn bounds_nesting() {
        let deep_ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(skip(&deep_ok), Ok(()));
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let err = skip(&too_deep).unwrap_err();
        assert_eq!(err.pos, MAX_DEPTH);
        assert_eq!(
            err.reason,
            format!("values nest deeper than {MAX_DEPTH} levels")
        );
        // Unbounded input never overflows the stack.
        assert!(skip(&"[".repeat(100_000)).is_err());
    }
}
