# Assign while held by the same account: acct-a holds 10.4.0.1 and the log
# assigns it to acct-a again at 02:00 (a retried API call).
#
# The repeat is ignored and reported; acct-a's holding keeps its original
# start and ends at the release at 04:00. acct-a: 1 + 2. The 4 bytes of the
# 04:00 bucket are billed to no one.

event 1 2026-10-31T00:00Z assign acct-a 10.4.0.1
event 2 2026-11-01T02:00Z assign acct-a 10.4.0.1
event 3 2026-11-01T04:00Z release acct-a 10.4.0.1

traffic 10.4.0.1 2026-11-01T00:00Z sent 1
traffic 10.4.0.1 2026-11-01T03:00Z sent 2
traffic 10.4.0.1 2026-11-01T04:00Z sent 4

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 10.4.0.1 2026-11-01T00:00Z .. 2026-11-01T04:00Z sent 3 received 0
expect anomaly 2 assign-while-held-by-same
expect checkpoint 2026-11-01T06:00Z
