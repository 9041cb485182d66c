//! The grammar of the client's script (DESIGN §5): `var n = 0; var q;`, then
//! any number of `q = Query.topN(...); q.run(function(row, table) { if
//! (row[0]) { println("s,TAG," + row[0] + "," + row[1]); n++; } });` pairs,
//! then `println("end," + n);`.

use usage_model::Side;

use super::lexer::{
    P, PResult, ROW0, ROW1, RUN_IF_ROW0, W, describe_found, end_of_script, error, peek,
    string_exact, string_with, token, tokens, ws,
};
use super::parsed::Script;
use super::query::topn_call;
use crate::error::shorten;

/// The rest of `var n = 0; var q; (q = Query.topN(..); q.run(..);)* println("end," + n);`
/// after the first `var`.
pub(super) fn client_script(i: &str) -> PResult<'_, Script> {
    let (mut i, ()) = tokens(
        i,
        &[W("n"), P("="), P("0"), P(";"), W("var"), W("q"), P(";")],
    )?;
    let mut queries = Vec::new();
    while peek(i, W("q")) {
        let (rest, ()) = tokens(i, &[W("q"), P("=")])?;
        let (rest, query) = topn_call(rest, None)?;
        let (rest, ()) = token(P(";"))(rest)?;
        let (rest, prefix) = client_run(rest, query.side)?;
        let (rest, ()) = token(P(";"))(rest)?;
        queries.push((query, prefix));
        i = rest;
    }
    if !peek(i, W("println")) {
        let at = ws(i);
        return error(
            at,
            format!(
                "expected `q = Query.topN(` or `println(\"end,\" + n);`, found {}",
                describe_found(at)
            ),
        );
    }
    let (i, ()) = tokens(i, &[W("println"), P("(")])?;
    let (i, ()) = string_exact(i, "end,")?;
    let (i, ()) = tokens(i, &[P("+"), W("n"), P(")"), P(";")])?;
    let (i, ()) = end_of_script(i)?;
    Ok((i, Script::Client(queries)))
}

/// `q.run(function(row, table) { if (row[0]) { println("s,7," + row[0] + "," + row[1]); n++; } })`,
/// returning the printed prefix (`s,7,`).
fn client_run(i: &str, side: Side) -> PResult<'_, String> {
    let (i, ()) = tokens(i, &RUN_IF_ROW0)?;
    let (i, ()) = tokens(i, &[W("println"), P("(")])?;
    let (i, prefix) = string_with(i, |s| row_prefix(s, side))?;
    let (i, ()) = token(P("+"))(i)?;
    let (i, ()) = tokens(i, &ROW0)?;
    let (i, ()) = token(P("+"))(i)?;
    let (i, ()) = string_exact(i, ",")?;
    let (i, ()) = token(P("+"))(i)?;
    let (i, ()) = tokens(i, &ROW1)?;
    let (i, ()) = tokens(
        i,
        &[
            P(")"),
            P(";"),
            W("n"),
            P("++"),
            P(";"),
            P("}"),
            P("}"),
            P(")"),
        ],
    )?;
    Ok((i, prefix))
}

/// The content `s,TAG,` / `r,TAG,` of the printed prefix.
fn row_prefix(s: &str, side: Side) -> PResult<'_, String> {
    let (expected_letter, field) = (side.letter(), side.address_field());
    let letter = s.chars().next();
    if !matches!(letter, Some('s' | 'r')) {
        return error(
            s,
            format!(
                "expected a row prefix `s,TAG,` or `r,TAG,`, found \"{}\"",
                shorten(s)
            ),
        );
    }
    if letter != Some(expected_letter) {
        return error(
            s,
            format!(
                "row prefix \"{}\" does not match the {field} query (expected `{expected_letter},TAG,`)",
                shorten(s)
            ),
        );
    }
    let rest = &s[1..];
    let bad = |at| {
        error(
            at,
            format!(
                "expected a row prefix `{expected_letter},TAG,` with a decimal u32 TAG, found \"{}\"",
                shorten(s)
            ),
        )
    };
    let Some(digits) = rest.strip_prefix(',').and_then(|r| r.strip_suffix(',')) else {
        return bad(s);
    };
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.parse::<u32>().is_err()
    {
        return bad(digits);
    }
    Ok(("", s.to_owned()))
}
