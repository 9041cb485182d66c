# A user takes over the excluded system account's address without a
# release: the takeover is reported, and the user is billed from it.
#
# Account 1 (excluded) holds 10.0.3.1 from the day before. At 02:00 acct-u is
# given it with no release for account 1: assign-while-held-by-other. acct-u
# releases it at 04:00 and account 1 releases it again at 05:00, a release
# of a free address. acct-u is billed the 02:00 and 03:00 buckets (5 + 6);
# the 01:00 bucket (4) is account 1's and billed to no one.

exclude-account 1

event 1 2026-10-31T00:00Z assign 1 10.0.3.1
event 2 2026-11-01T02:00Z assign acct-u 10.0.3.1
event 3 2026-11-01T04:00Z release acct-u 10.0.3.1
event 4 2026-11-01T05:00Z release 1 10.0.3.1

traffic 10.0.3.1 2026-11-01T01:00Z sent 4
traffic 10.0.3.1 2026-11-01T02:00Z sent 5
traffic 10.0.3.1 2026-11-01T03:00Z sent 6 received 1

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-u 10.0.3.1 2026-11-01T02:00Z .. 2026-11-01T04:00Z sent 11 received 1
expect anomaly 2 assign-while-held-by-other
expect anomaly 4 release-of-free-ip
expect plan pieces 1 queries 1 ips 1
expect checkpoint 2026-11-01T06:00Z
