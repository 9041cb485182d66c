# A to B and back to A in one window: 203.0.113.7 goes from acct-a to acct-b
# at 01:00 and back to acct-a at 03:30.
#
# The address moves a doubling number of bytes each hour (1, 2, 4, 8, 16, 32)
# so every bucket's owner can be read off the sums. acct-a: the 00:00 bucket
# (1). acct-b: 01:00 and 02:00 (2 + 4 = 6); its last half hour, 03:00–03:30,
# lies in a bucket that closes at 04:00 under acct-a. acct-a again: 03:00,
# 04:00 and 05:00 (8 + 16 + 32 = 56). The address is in three queries, never
# twice in one.

event 1 2026-10-31T12:00Z assign acct-a 203.0.113.7
event 2 2026-11-01T01:00Z release acct-a 203.0.113.7
event 3 2026-11-01T01:00Z assign acct-b 203.0.113.7
event 4 2026-11-01T03:30Z release acct-b 203.0.113.7
event 5 2026-11-01T03:30Z assign acct-a 203.0.113.7

traffic 203.0.113.7 2026-11-01T00:00Z sent 1
traffic 203.0.113.7 2026-11-01T01:00Z sent 2
traffic 203.0.113.7 2026-11-01T02:00Z sent 4
traffic 203.0.113.7 2026-11-01T03:00Z sent 8
traffic 203.0.113.7 2026-11-01T04:00Z sent 16
traffic 203.0.113.7 2026-11-01T05:00Z sent 32

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 203.0.113.7 2026-11-01T00:00Z .. 2026-11-01T01:00Z sent 1 received 0
expect record acct-b 203.0.113.7 2026-11-01T01:00Z .. 2026-11-01T03:00Z sent 6 received 0
expect record acct-a 203.0.113.7 2026-11-01T03:00Z .. 2026-11-01T06:00Z sent 56 received 0
expect total acct-a sent 57 received 0
expect total acct-b sent 6 received 0
expect plan pieces 3 queries 3 ips 1
expect checkpoint 2026-11-01T06:00Z
