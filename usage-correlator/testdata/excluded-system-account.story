# Excluded system account: CloudStack's system account "1" is never billed,
# and its events are dropped before anything else.
#
# Account 1 holds 10.0.0.1: its 100 bytes are billed to no one. The log also
# holds a release of acct-a's 10.0.0.2 by account 1 at 02:00 and an assign of
# it to account 1 at 03:00: both dropped, so they neither close acct-a's
# holding nor raise an anomaly. acct-a is billed 1 + 2 for the whole window.

exclude-account 1

event 1 2026-10-31T00:00Z assign 1 10.0.0.1
event 2 2026-10-31T00:00Z assign acct-a 10.0.0.2
event 3 2026-11-01T02:00Z release 1 10.0.0.2
event 4 2026-11-01T03:00Z assign 1 10.0.0.2

traffic 10.0.0.1 2026-11-01T00:00Z sent 100
traffic 10.0.0.2 2026-11-01T01:00Z sent 1
traffic 10.0.0.2 2026-11-01T04:00Z sent 2

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 10.0.0.2 2026-11-01T00:00Z .. 2026-11-01T06:00Z sent 3 received 0
expect plan pieces 1 queries 1 ips 1
expect checkpoint 2026-11-01T06:00Z
