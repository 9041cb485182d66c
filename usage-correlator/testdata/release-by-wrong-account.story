# Release by the wrong account: acct-a holds 192.0.2.77, but the release at
# 04:00 names acct-b.
#
# The address is released anyway (the cloud took it back) and the mismatch is
# reported. acct-a is billed up to 04:00: the 9 bytes of the 03:00 bucket. The
# 1000 bytes of the 04:00 bucket, while the address is free, are billed to no
# one, and never to acct-b, which never held it.

event 1 2026-10-31T00:00Z assign acct-a 192.0.2.77
event 2 2026-11-01T04:00Z release acct-b 192.0.2.77

traffic 192.0.2.77 2026-11-01T03:00Z sent 9
traffic 192.0.2.77 2026-11-01T04:00Z sent 1000

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 192.0.2.77 2026-11-01T00:00Z .. 2026-11-01T04:00Z sent 9 received 0
expect anomaly 2 release-by-other-account
expect checkpoint 2026-11-01T06:00Z
