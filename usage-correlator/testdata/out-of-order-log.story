# An out-of-order log: the events of 10.9.9.9 arrive newest first.
#
# The ledger sorts by (time, id) before replaying: acct-a holds the address
# from 22:00 the day before until 01:00, when it is released (event 2) and
# given to acct-b (event 3, same instant, later id); acct-b releases it at
# 04:00. acct-a: 1. acct-b: 2 + 4. The 8 bytes of the 04:00 bucket, after the
# release, are billed to no one. No anomaly: read in order, the log is sound.

event 4 2026-11-01T04:00Z release acct-b 10.9.9.9
event 3 2026-11-01T01:00Z assign acct-b 10.9.9.9
event 2 2026-11-01T01:00Z release acct-a 10.9.9.9
event 1 2026-10-31T22:00Z assign acct-a 10.9.9.9

traffic 10.9.9.9 2026-11-01T00:00Z sent 1
traffic 10.9.9.9 2026-11-01T01:00Z sent 2
traffic 10.9.9.9 2026-11-01T03:00Z sent 4
traffic 10.9.9.9 2026-11-01T04:00Z sent 8

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 10.9.9.9 2026-11-01T00:00Z .. 2026-11-01T01:00Z sent 1 received 0
expect record acct-b 10.9.9.9 2026-11-01T01:00Z .. 2026-11-01T04:00Z sent 6 received 0
expect checkpoint 2026-11-01T06:00Z
