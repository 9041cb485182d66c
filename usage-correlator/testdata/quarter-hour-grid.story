# A finer grid: the monitor's view holds 15-minute buckets.
#
# acct-a is assigned 10.6.0.1 at 10:07 and releases it at 10:40. The 10:00
# bucket closes at 10:15 under acct-a; the 10:30 bucket closes at 10:45 with
# the address free. acct-a: 1 + 2. The 4 and 8 bytes after are no one's.

grid 15m

event 1 2026-11-01T10:07Z assign acct-a 10.6.0.1
event 2 2026-11-01T10:40Z release acct-a 10.6.0.1

traffic 10.6.0.1 2026-11-01T10:00Z sent 1
traffic 10.6.0.1 2026-11-01T10:15Z sent 2
traffic 10.6.0.1 2026-11-01T10:30Z sent 4
traffic 10.6.0.1 2026-11-01T10:45Z sent 8

window 2026-11-01T10:00Z .. 2026-11-01T11:00Z
expect record acct-a 10.6.0.1 2026-11-01T10:00Z .. 2026-11-01T10:30Z sent 3 received 0
expect checkpoint 2026-11-01T11:00Z
