//! The grammar of Apache CloudStack's script (`TrafficSentinelResource.getScript`):
//! a topN over `ipsource,bytes` into `totalsSent`, a topN over
//! `ipdestination,bytes` into `totalsRcvd`, then `for (var addr in
//! totalsSent)` printing `addr,TS,TR`.

use usage_model::Side;

use super::lexer::{
    P, PResult, ROW0, ROW1, RUN_IF_ROW0, W, end_of_script, string_exact, token, tokens,
};
use super::parsed::Script;
use super::query::topn_call;

/// The rest of CloudStack's script after its first `var`.
pub(super) fn cloudstack_shape(i: &str) -> PResult<'_, Script> {
    let (i, ()) = tokens(i, &[W("q"), P("=")])?;
    let (i, sent) = topn_call(i, Some(Side::Sent))?;
    let (i, ()) = token(P(";"))(i)?;
    let (i, ()) = cloudstack_run(i, "totalsSent")?;
    let (i, ()) = tokens(i, &[W("var"), W("q"), P("=")])?;
    let (i, received) = topn_call(i, Some(Side::Received))?;
    let (i, ()) = token(P(";"))(i)?;
    let (i, ()) = cloudstack_run(i, "totalsRcvd")?;
    let (i, ()) = tokens(
        i,
        &[
            W("for"),
            P("("),
            W("var"),
            W("addr"),
            W("in"),
            W("totalsSent"),
            P(")"),
            P("{"),
            W("var"),
            W("TS"),
            P("="),
            P("0"),
            P(";"),
            W("var"),
            W("TR"),
            P("="),
            P("0"),
            P(";"),
            W("if"),
            P("("),
            W("totalsSent"),
            P("["),
            W("addr"),
            P("]"),
            P(")"),
            W("TS"),
            P("="),
            W("totalsSent"),
            P("["),
            W("addr"),
            P("]"),
            P(";"),
            W("if"),
            P("("),
            W("totalsRcvd"),
            P("["),
            W("addr"),
            P("]"),
            P(")"),
            W("TR"),
            P("="),
            W("totalsRcvd"),
            P("["),
            W("addr"),
            P("]"),
            P(";"),
            W("println"),
            P("("),
            W("addr"),
            P("+"),
        ],
    )?;
    let (i, ()) = string_exact(i, ",")?;
    let (i, ()) = tokens(i, &[P("+"), W("TS"), P("+")])?;
    let (i, ()) = string_exact(i, ",")?;
    let (i, ()) = tokens(i, &[P("+"), W("TR"), P(")"), P(";"), P("}")])?;
    let (i, ()) = end_of_script(i)?;
    Ok((i, Script::CloudStack { sent, received }))
}

/// `var totals = {}; var t = q.run(function(row,table) { if(row[0]) { totals[row[0]] = row[1]; } });`
fn cloudstack_run<'a>(i: &'a str, totals: &'static str) -> PResult<'a, ()> {
    let (i, ()) = tokens(
        i,
        &[
            W("var"),
            W(totals),
            P("="),
            P("{"),
            P("}"),
            P(";"),
            W("var"),
            W("t"),
            P("="),
        ],
    )?;
    let (i, ()) = tokens(i, &RUN_IF_ROW0)?;
    let (i, ()) = tokens(i, &[W(totals), P("[")])?;
    let (i, ()) = tokens(i, &ROW0)?;
    let (i, ()) = tokens(i, &[P("]"), P("=")])?;
    let (i, ()) = tokens(i, &ROW1)?;
    tokens(i, &[P(";"), P("}"), P("}"), P(")"), P(";")])
}
