# Same-instant handover with the ids the "wrong" way round: CloudStack logs
# whole seconds, so the new owner's assign (event 10) can carry a lower id
# than the old owner's release (event 11) of the same second.
#
# At one instant releases apply before assigns, so acct-o's holding ends at
# 09:00 and acct-n's starts there; no anomaly. acct-o is billed the 08:00
# bucket (7), acct-n the 09:00 and 10:00 buckets (8 + 9).

event 3 2026-11-01T08:00Z assign acct-o 198.51.100.5
event 10 2026-11-01T09:00Z assign acct-n 198.51.100.5
event 11 2026-11-01T09:00Z release acct-o 198.51.100.5

traffic 198.51.100.5 2026-11-01T08:00Z sent 7
traffic 198.51.100.5 2026-11-01T09:00Z sent 8
traffic 198.51.100.5 2026-11-01T10:00Z sent 9

window 2026-11-01T06:00Z .. 2026-11-01T12:00Z
expect record acct-o 198.51.100.5 2026-11-01T08:00Z .. 2026-11-01T09:00Z sent 7 received 0
expect record acct-n 198.51.100.5 2026-11-01T09:00Z .. 2026-11-01T12:00Z sent 17 received 0
expect plan pieces 2 queries 2 ips 1
expect checkpoint 2026-11-01T12:00Z
