# Same-instant handover: acct-a releases and acct-b is assigned at the very
# same instant, once on the grid and once between grid points.
#
# Intervals are half-open, so [.., 02:00) and [02:00, ..) do not overlap: on
# 10.1.1.1 the 01:00 bucket is acct-a's and the 02:00 bucket acct-b's. On
# 10.1.1.2 the handover is at 02:40: the 02:00 bucket closes at 03:00 under
# acct-b, so its 70 bytes are acct-b's. acct-a moved nothing on 10.1.1.2 while
# holding it: no record.

event 10 2026-10-31T00:00Z assign acct-a 10.1.1.1
event 11 2026-11-01T02:00Z release acct-a 10.1.1.1
event 12 2026-11-01T02:00Z assign acct-b 10.1.1.1
event 13 2026-10-31T00:00Z assign acct-a 10.1.1.2
event 14 2026-11-01T02:40Z release acct-a 10.1.1.2
event 15 2026-11-01T02:40Z assign acct-b 10.1.1.2

traffic 10.1.1.1 2026-11-01T01:00Z sent 100 received 1
traffic 10.1.1.1 2026-11-01T02:00Z sent 200 received 2
traffic 10.1.1.2 2026-11-01T02:00Z sent 70

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 10.1.1.1 2026-11-01T00:00Z .. 2026-11-01T02:00Z sent 100 received 1
expect record acct-b 10.1.1.1 2026-11-01T02:00Z .. 2026-11-01T06:00Z sent 200 received 2
expect record acct-b 10.1.1.2 2026-11-01T02:00Z .. 2026-11-01T06:00Z sent 70 received 0
# Both addresses are split at 02:00: two groups of two.
expect plan pieces 4 queries 2 ips 2
expect checkpoint 2026-11-01T06:00Z
