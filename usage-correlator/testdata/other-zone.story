# Zones are separate address spaces: 10.5.0.1 is held by acct-a in zone-1
# and by acct-z in zone-2.
#
# The zone-1 cycle bills only zone-1's holder, and reports only zone-1's
# anomalies: the stray release in zone-2 belongs to zone-2's cycle.

zone zone-1

event 1 2026-10-31T00:00Z assign acct-a 10.5.0.1
event 2 2026-10-31T00:00Z assign acct-z 10.5.0.1 zone zone-2
event 3 2026-11-01T01:00Z release acct-q 10.5.0.2 zone zone-2

traffic 10.5.0.1 2026-11-01T00:00Z sent 5

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 10.5.0.1 2026-11-01T00:00Z .. 2026-11-01T06:00Z sent 5 received 0
expect plan pieces 1 queries 1 ips 1
expect checkpoint 2026-11-01T06:00Z
