# Release mid-window: acct-a gives 198.51.100.5 back at 03:40.
#
# acct-a is billed up to the last bucket that closes while it still holds the
# address: [00:00, 03:00). The 03:00 bucket closes at 04:00, when the address
# is free, so its bytes (and the 05:00 bucket's) are billed to no one.

event 1 2026-10-31T08:00Z assign acct-a 198.51.100.5
event 2 2026-11-01T03:40Z release acct-a 198.51.100.5

traffic 198.51.100.5 2026-11-01T00:00Z sent 10 received 1
traffic 198.51.100.5 2026-11-01T02:00Z sent 20 received 2
traffic 198.51.100.5 2026-11-01T03:00Z sent 500 received 50
traffic 198.51.100.5 2026-11-01T05:00Z sent 7

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 198.51.100.5 2026-11-01T00:00Z .. 2026-11-01T03:00Z sent 30 received 3
expect checkpoint 2026-11-01T06:00Z
