//! A writer of CloudStack's script, for comparisons with CloudStack's
//! collection strategy.

use std::net::IpAddr;

use time::PrimitiveDateTime;
use usage_model::ServerTimeZone;

/// The script Apache CloudStack's Traffic Sentinel integration sends
/// (`TrafficSentinelResource.getScript`), for comparisons with it: one line
/// of JavaScript with the spacing its Java string building leaves, a topN of
/// `ipsource,bytes` into `totalsSent` and one of `ipdestination,bytes` into
/// `totalsRcvd` (both `N = 100000`, CloudStack's cap), then a loop printing
/// `addr,SENT,RECEIVED` for each address that *sent* something.
///
/// The ` & … = ZONES` and ` & … != ZONES` parts are left out when their list
/// is empty; the interval `[start, end)` is written as `yyyyMMdd HH:mm:ss` on
/// the server's clock (`server_time_zone`: a [`ServerTimeZone`] or a fixed
/// [`UtcOffset`](time::UtcOffset)), as the server reads it (an instant whose
/// reading is outside the supported dates is written in UTC).
///
/// # Example
///
/// ```
/// use usage_model::Grid;
/// use time::{Duration, UtcOffset, macros::datetime};
/// use traffic_sentinel_emulator::{Flow, FlowHistory, answer_script, cloudstack_script};
///
/// let (sender, receiver) = ("203.0.113.7".parse().unwrap(), "203.0.113.8".parse().unwrap());
/// let flow = Flow {
///     time: datetime!(2026-11-01 10:15 UTC),
///     ipsource: sender,
///     ipdestination: receiver,
///     sourcezone: "EXTERNAL".into(),
///     destinationzone: "EXTERNAL".into(),
///     bytes: 1500,
/// };
/// let history = FlowHistory::new(Grid::MINUTELY, [flow]).unwrap();
/// let script = cloudstack_script(
///     &[sender, receiver],
///     &["EXTERNAL"],
///     &[],
///     datetime!(2026-11-01 10:00 UTC),
///     datetime!(2026-11-01 11:00 UTC),
///     UtcOffset::UTC,
/// );
/// // CloudStack's defect: the address that only received is not printed.
/// assert_eq!(answer_script(&history, &script, UtcOffset::UTC).unwrap(), "203.0.113.7,1500,0\n");
/// ```
pub fn cloudstack_script(
    ips: &[IpAddr],
    include_zones: &[&str],
    exclude_zones: &[&str],
    start: time::OffsetDateTime,
    end: time::OffsetDateTime,
    server_time_zone: impl Into<ServerTimeZone>,
) -> String {
    let zone = server_time_zone.into();
    let ips = ips
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (include, exclude) = (include_zones.join(","), exclude_zones.join(","));
    let (mut dest, mut src) = (String::new(), String::new());
    if !include.is_empty() {
        dest = format!(" & destinationzone = {include}");
        src = format!(" & sourcezone = {include}");
    }
    if !exclude.is_empty() {
        dest += &format!(" & destinationzone != {exclude}");
        src += &format!(" & sourcezone != {exclude}");
    }
    let local = |t: time::OffsetDateTime| {
        let t = zone
            .to_local(t)
            .unwrap_or_else(|_| PrimitiveDateTime::new(t.date(), t.time()));
        format!(
            "{:04}{:02}{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    let (start, end) = (local(start), local(end));
    let mut sb = String::new();
    sb += "var q = Query.topN(\"historytrmx\",";
    sb += "                 \"ipsource,bytes\",";
    sb += &format!("                 \"ipsource = {ips}{dest}\",");
    sb += &format!("                 \"{start}, {end}\",");
    sb += "                 \"bytes\",";
    sb += "                 100000);";
    sb += "var totalsSent = {};";
    sb += "var t = q.run(";
    sb += "  function(row,table) {";
    sb += "    if(row[0]) {    ";
    sb += "      totalsSent[row[0]] = row[1];";
    sb += "    }";
    sb += "  });";
    sb += "var q = Query.topN(\"historytrmx\",";
    sb += "                 \"ipdestination,bytes\",";
    sb += &format!("                 \"ipdestination = {ips}{src}\",");
    sb += &format!("                 \"{start}, {end}\",");
    sb += "                 \"bytes\",";
    sb += "                 100000);";
    sb += "var totalsRcvd = {};";
    sb += "var t = q.run(";
    sb += "  function(row,table) {";
    sb += "    if(row[0]) {";
    sb += "      totalsRcvd[row[0]] = row[1];";
    sb += "    }";
    sb += "  });";
    sb += "for (var addr in totalsSent) {";
    sb += "    var TS = 0;";
    sb += "    var TR = 0;";
    sb += "    if(totalsSent[addr]) TS = totalsSent[addr];";
    sb += "    if(totalsRcvd[addr]) TR = totalsRcvd[addr];";
    sb += "    println(addr + \",\" + TS + \",\" + TR);";
    sb += "}";
    sb
}
