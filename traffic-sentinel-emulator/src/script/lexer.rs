//! The tokens of a TS script: words, punctuation and string literals, with
//! any whitespace between them, and the errors that name where a script
//! stopped making sense.

use nom::bytes::complete::tag;
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use crate::error::{Error, shorten};

#[derive(Debug)]
pub(super) enum Expected {
    Kind(ErrorKind),
    Token(&'static str),
    Message(String),
}

#[derive(Debug)]
pub(super) struct SyntaxError<'a> {
    pub(super) at: &'a str,
    pub(super) expected: Expected,
}

impl<'a> ParseError<&'a str> for SyntaxError<'a> {
    fn from_error_kind(at: &'a str, kind: ErrorKind) -> Self {
        SyntaxError {
            at,
            expected: Expected::Kind(kind),
        }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

impl SyntaxError<'_> {
    pub(super) fn into_error(self, full: &str) -> Error {
        let offset = (self.at.as_ptr() as usize)
            .checked_sub(full.as_ptr() as usize)
            .filter(|&o| o <= full.len())
            .unwrap_or(0);
        let before = full.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        let found = describe_found(self.at);
        let message = match self.expected {
            Expected::Token(t) => format!("expected `{t}`, found {found}"),
            Expected::Message(m) => m,
            Expected::Kind(k) => format!("unexpected {found} ({})", k.description()),
        };
        Error::Script {
            line,
            column,
            message,
        }
    }
}

pub(super) fn describe_found(at: &str) -> String {
    if at.is_empty() {
        return "end of script".to_owned();
    }
    let line = at.split(['\n', '\r']).next().unwrap_or("");
    let snippet: String = line.chars().take(24).collect();
    if snippet.is_empty() {
        "end of line".to_owned()
    } else if snippet.len() < line.len() {
        format!("{snippet:?}…")
    } else {
        format!("{snippet:?}")
    }
}

pub(super) type PResult<'a, T> = IResult<&'a str, T, SyntaxError<'a>>;

pub(super) fn error<'a, T>(at: &'a str, message: String) -> PResult<'a, T> {
    Err(nom::Err::Error(SyntaxError {
        at,
        expected: Expected::Message(message),
    }))
}

/// Skips spaces, tabs, carriage returns and line feeds (nom's `multispace0`).
pub(super) fn ws(i: &str) -> &str {
    i.trim_start_matches([' ', '\t', '\r', '\n'])
}

pub(super) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// A script token: a word (identifier or keyword, which must not run on into
/// another identifier character) or punctuation.
#[derive(Clone, Copy)]
pub(super) enum Tok {
    W(&'static str),
    P(&'static str),
}
pub(super) use Tok::{P, W};

/// `q.run(function(row, table) { if (row[0]) {`: how both script shapes start
/// handling a row.
pub(super) const RUN_IF_ROW0: [Tok; 19] = [
    W("q"),
    P("."),
    W("run"),
    P("("),
    W("function"),
    P("("),
    W("row"),
    P(","),
    W("table"),
    P(")"),
    P("{"),
    W("if"),
    P("("),
    W("row"),
    P("["),
    P("0"),
    P("]"),
    P(")"),
    P("{"),
];
/// `row[0]`.
pub(super) const ROW0: [Tok; 4] = [W("row"), P("["), P("0"), P("]")];
/// `row[1]`.
pub(super) const ROW1: [Tok; 4] = [W("row"), P("["), P("1"), P("]")];

/// Skips whitespace, then matches `t`.
pub(super) fn token(t: Tok) -> impl Fn(&str) -> PResult<'_, ()> {
    move |i: &str| {
        let i = ws(i);
        let (text, is_word) = match t {
            W(w) => (w, true),
            P(p) => (p, false),
        };
        let fail = || {
            nom::Err::Error(SyntaxError {
                at: i,
                expected: Expected::Token(text),
            })
        };
        let rest = i.strip_prefix(text).ok_or_else(fail)?;
        if is_word && rest.starts_with(is_ident_char) {
            return Err(fail());
        }
        Ok((rest, ()))
    }
}

/// Matches a sequence of tokens.
pub(super) fn tokens<'a>(mut i: &'a str, toks: &[Tok]) -> PResult<'a, ()> {
    for &t in toks {
        (i, ()) = token(t)(i)?;
    }
    Ok((i, ()))
}

/// Whether the next token (after whitespace) is `t`.
pub(super) fn peek(i: &str, t: Tok) -> bool {
    token(t)(i).is_ok()
}

/// A double-quoted string literal whose content `inner` must consume entirely.
pub(super) fn string_with<'a, T>(
    i: &'a str,
    inner: impl FnOnce(&'a str) -> PResult<'a, T>,
) -> PResult<'a, T> {
    let (i, ()) = token(P("\""))(i)?;
    let (content, i) = i.split_at(string_content_len(i.as_bytes()));
    let (i, _) = tag::<_, _, SyntaxError<'_>>("\"").parse(i).map_err(|_| {
        nom::Err::Error(SyntaxError {
            at: i,
            expected: Expected::Message(format!(
                "expected the closing `\"` of a string, found {}",
                describe_found(i)
            )),
        })
    })?;
    let (_, value) = inner(content)?;
    Ok((i, value))
}

/// The length of the string content at the start of `i`: the bytes before
/// the first `"`, `\\`, CR or LF (ASCII bytes, which never occur inside a
/// multi-byte character), eight bytes at a time.
pub(super) fn string_content_len(i: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Whether any byte of `word` is `b` (exact, by the zero-byte test).
    let has = |word: u64, b: u8| {
        let x = word ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    let (words, _) = i.as_chunks::<8>();
    let clean = words
        .iter()
        .map(|&w| u64::from_ne_bytes(w))
        .take_while(|&w| !(has(w, b'"') || has(w, b'\\') || has(w, b'\n') || has(w, b'\r')))
        .count();
    let from = clean * 8;
    from + i[from..]
        .iter()
        .position(|b| matches!(b, b'"' | b'\\' | b'\n' | b'\r'))
        .unwrap_or(i.len() - from)
}

/// A string literal whose content is exactly `text`.
pub(super) fn string_exact<'a>(i: &'a str, text: &'static str) -> PResult<'a, ()> {
    string_with(i, |s| {
        if s == text {
            Ok(("", ()))
        } else {
            error(
                s,
                format!("expected the string \"{text}\", found \"{}\"", shorten(s)),
            )
        }
    })
}

/// Succeeds at the end of a string's content (after whitespace).
pub(super) fn end_of_content<'a>(i: &'a str, what: &'static str) -> PResult<'a, ()> {
    let i = ws(i);
    if i.is_empty() {
        Ok((i, ()))
    } else {
        error(i, format!("expected {what}, found {}", describe_found(i)))
    }
}

pub(super) fn end_of_script(i: &str) -> PResult<'_, ()> {
    let i = ws(i);
    if i.is_empty() {
        Ok((i, ()))
    } else {
        error(
            i,
            format!(
                "expected the end of the script, found {}",
                describe_found(i)
            ),
        )
    }
}
