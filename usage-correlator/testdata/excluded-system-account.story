# Excluded system account: CloudStack's system account "1" is never billed,
# but it takes part in ownership like any account.
#
# Account 1 holds 10.0.0.1: its 100 bytes are billed to no one. acct-a holds
# 10.0.0.2 until account 1 releases it at 02:00: a release naming another
# account, reported, which closes acct-a's holding. Account 1 is then given
# the address at 03:00. acct-a is billed the 01:00 bucket (1); the 04:00
# bucket (2) is account 1's and billed to no one.

exclude-account 1

event 1 2026-10-31T00:00Z assign 1 10.0.0.1
event 2 2026-10-31T00:00Z assign acct-a 10.0.0.2
event 3 2026-11-01T02:00Z release 1 10.0.0.2
event 4 2026-11-01T03:00Z assign 1 10.0.0.2

traffic 10.0.0.1 2026-11-01T00:00Z sent 100
traffic 10.0.0.2 2026-11-01T01:00Z sent 1
traffic 10.0.0.2 2026-11-01T04:00Z sent 2

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 10.0.0.2 2026-11-01T00:00Z .. 2026-11-01T02:00Z sent 1 received 0
expect anomaly 3 release-by-other-account
expect plan pieces 1 queries 1 ips 1
expect checkpoint 2026-11-01T06:00Z
