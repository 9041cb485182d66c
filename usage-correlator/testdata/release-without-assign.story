# Release without assign: the log holds a release of 203.0.113.50 by acct-a
# at 01:30 but no assign before it (lost, or from before the log began).
#
# CloudStack billed such a stray release from the window start. Here the
# release frees an address nobody holds: it is ignored and reported. The
# address's 40 + 60 bytes before 03:00 are billed to no one. acct-a is then
# properly assigned the address at 03:00 and billed the 5 bytes after.

event 1 2026-11-01T01:30Z release acct-a 203.0.113.50
event 2 2026-11-01T03:00Z assign acct-a 203.0.113.50

traffic 203.0.113.50 2026-11-01T00:00Z sent 40
traffic 203.0.113.50 2026-11-01T01:00Z sent 60
traffic 203.0.113.50 2026-11-01T04:00Z sent 5

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 203.0.113.50 2026-11-01T03:00Z .. 2026-11-01T06:00Z sent 5 received 0
expect anomaly 1 release-of-free-ip
expect checkpoint 2026-11-01T06:00Z
