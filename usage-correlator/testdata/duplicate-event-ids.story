# Duplicate event ids: the log was exported twice and merged.
#
# Event 1 appears twice, identical: one copy is dropped silently. Event 2
# appears twice with different times (05:00, then 03:00): the first line
# wins, so the release is at 05:00 and the 03:00 copy is reported as a
# conflict. acct-a holds 10.2.0.1 until 05:00 and is billed the 02:00, 03:00
# and 04:00 buckets: 3 + 4 + 5 = 12.

event 1 2026-10-31T00:00Z assign acct-a 10.2.0.1
event 1 2026-10-31T00:00Z assign acct-a 10.2.0.1
event 2 2026-11-01T05:00Z release acct-a 10.2.0.1
event 2 2026-11-01T03:00Z release acct-a 10.2.0.1

traffic 10.2.0.1 2026-11-01T02:00Z sent 3
traffic 10.2.0.1 2026-11-01T03:00Z sent 4
traffic 10.2.0.1 2026-11-01T04:00Z sent 5
traffic 10.2.0.1 2026-11-01T05:00Z sent 6

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 10.2.0.1 2026-11-01T00:00Z .. 2026-11-01T05:00Z sent 12 received 0
expect anomaly 2 conflicting-duplicate
expect checkpoint 2026-11-01T06:00Z
