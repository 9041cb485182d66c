//! The emulator's own reader of the two TS script shapes it understands.
//!
//! 1. The client's script (SCRIPT-CONTRACT): `var n = 0; var q;`, then any
//!    number of `q = Query.topN(...); q.run(function(row, table) { if (row[0])
//!    { println("s,TAG," + row[0] + "," + row[1]); n++; } });` pairs, then
//!    `println("end," + n);`.
//! 2. CloudStack's script (`TrafficSentinelResource.getScript`): a topN over
//!    `ipsource,bytes` into `totalsSent`, a topN over `ipdestination,bytes`
//!    into `totalsRcvd`, then `for (var addr in totalsSent)` printing
//!    `addr,TS,TR`.
//!
//! Any amount of whitespace (including none, where JavaScript allows it) may
//! separate tokens. Anything else is refused with the line and column of the
//! first token that was not understood.

mod cloudstack;
mod lexer;
mod ours;
mod parsed;
mod query;
#[cfg(test)]
mod tests;

pub use self::parsed::MAX_TOP_N;
pub(crate) use self::parsed::{Script, TopN};

use self::lexer::{PResult, W, describe_found, error, peek, token, ws};
use crate::error::Error;

/// Parses a script of either shape.
pub(crate) fn parse_script(script: &str) -> Result<Script, Error> {
    match script_shape(script) {
        Ok((_, parsed)) => Ok(parsed),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.into_error(script)),
        Err(nom::Err::Incomplete(_)) => Err(Error::Script {
            line: 1,
            column: 1,
            message: "incomplete script".to_owned(),
        }),
    }
}

fn script_shape(i: &str) -> PResult<'_, Script> {
    let (i, ()) = token(W("var"))(i)?;
    if peek(i, W("n")) {
        ours::client_script(i)
    } else if peek(i, W("q")) {
        cloudstack::cloudstack_shape(i)
    } else {
        let at = ws(i);
        error(
            at,
            format!(
                "expected `var n = 0;` (client script) or `var q = Query.topN(` \
                 (CloudStack script), found {}",
                describe_found(at)
            ),
        )
    }
}
