# Assign while held by another account: acct-a holds 198.51.100.9; at 02:15
# the log assigns it to acct-b with no release for acct-a.
#
# CloudStack let the later assign overwrite the earlier one and acct-a's
# traffic was lost. Here acct-a's holding is closed at 02:15 and acct-b's
# opens there, and the conflict is reported. The 02:00 bucket closes under
# acct-b. acct-a: 11 sent. acct-b: 22 sent, 33 received.

event 1 2026-10-31T10:00Z assign acct-a 198.51.100.9
event 2 2026-11-01T02:15Z assign acct-b 198.51.100.9

traffic 198.51.100.9 2026-11-01T00:00Z sent 11
traffic 198.51.100.9 2026-11-01T02:00Z sent 22
traffic 198.51.100.9 2026-11-01T05:00Z received 33

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 198.51.100.9 2026-11-01T00:00Z .. 2026-11-01T02:00Z sent 11 received 0
expect record acct-b 198.51.100.9 2026-11-01T02:00Z .. 2026-11-01T06:00Z sent 22 received 33
expect anomaly 2 assign-while-held-by-other
expect checkpoint 2026-11-01T06:00Z
