# Duplicate event ids: the log was exported twice and merged.
#
# Event 1 appears twice, identical: one copy is dropped silently. Event 2
# appears twice with different times (03:00 and 05:00): the first in time
# order, 03:00, is kept and the other copy is reported as a conflict. So
# acct-a holds 10.2.0.1 until 03:00 and is billed the 02:00 bucket only (3);
# the 4 and 5 bytes after the release are billed to no one.

event 1 2026-10-31T00:00Z assign acct-a 10.2.0.1
event 1 2026-10-31T00:00Z assign acct-a 10.2.0.1
event 2 2026-11-01T05:00Z release acct-a 10.2.0.1
event 2 2026-11-01T03:00Z release acct-a 10.2.0.1

traffic 10.2.0.1 2026-11-01T02:00Z sent 3
traffic 10.2.0.1 2026-11-01T03:00Z sent 4
traffic 10.2.0.1 2026-11-01T04:00Z sent 5

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 10.2.0.1 2026-11-01T00:00Z .. 2026-11-01T03:00Z sent 3 received 0
expect anomaly 2 conflicting-duplicate-id
expect checkpoint 2026-11-01T06:00Z
