# The seed's basic case: a six-hour window with two addresses held since
# before it (continuing) and one assigned during it (newly assigned).
#
# acct-a has held .10 since 28 October and acct-b .11 since 30 October: both
# are billed for the whole window, and share one query. acct-a is given .12
# at 02:20; the 02:00 bucket closes at 03:00 while acct-a holds it, so acct-a
# is billed from 02:00. The 999 bytes .12 sent in the 01:00 bucket, before
# anyone held it, are billed to no one.

zone zone-1
grid 1h

event 1 2026-10-28T09:15Z assign acct-a 203.0.113.10
event 2 2026-10-30T14:00Z assign acct-b 203.0.113.11
event 3 2026-11-01T02:20Z assign acct-a 203.0.113.12

traffic 203.0.113.10 2026-11-01T00:00Z sent 100 received 10
traffic 203.0.113.10 2026-11-01T05:00Z sent 50
traffic 203.0.113.11 2026-11-01T01:00Z sent 7 received 3
traffic 203.0.113.11 2026-11-01T03:00Z received 20
traffic 203.0.113.12 2026-11-01T01:00Z sent 999
traffic 203.0.113.12 2026-11-01T02:00Z sent 30 received 4
traffic 203.0.113.12 2026-11-01T04:00Z sent 6

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
# .10: 100 + 50 sent, 10 received.
expect record acct-a 203.0.113.10 2026-11-01T00:00Z .. 2026-11-01T06:00Z sent 150 received 10
# .11: 7 sent, 3 + 20 received.
expect record acct-b 203.0.113.11 2026-11-01T00:00Z .. 2026-11-01T06:00Z sent 7 received 23
# .12: 30 + 6 sent, 4 received; the 999 before the assign are nobody's.
expect record acct-a 203.0.113.12 2026-11-01T02:00Z .. 2026-11-01T06:00Z sent 36 received 4
expect total acct-a sent 186 received 14
expect total acct-b sent 7 received 23
# Two groups: the full window (.10 and .11) and [02:00, 06:00) (.12).
expect plan pieces 3 queries 2 ips 3
expect checkpoint 2026-11-01T06:00Z
