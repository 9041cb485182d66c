# An address that never moved a byte: acct-a holds 203.0.113.99 all window
# and it stays silent.
#
# The plan still asks about it, Traffic Sentinel answers no row, and no
# record is written (a zero-byte record bills nothing). The checkpoint still
# advances to the window end: CloudStack's checkpoint stood still when a
# window had no traffic, and re-queried it forever.

event 1 2026-10-31T00:00Z assign acct-a 203.0.113.99

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect no records
expect plan pieces 1 queries 1 ips 1
expect checkpoint 2026-11-01T06:00Z
