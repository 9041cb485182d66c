# IPv6: acct-a holds 2001:db8::10 until 03:00, when acct-b takes it over;
# acct-b also holds the IPv4 address 203.0.113.10 all window.
#
# The handover event writes the IPv6 address in full
# (2001:db8:0:0:0:0:0:10); it is the same address. acct-a: 1000 sent and
# 2000 received before 03:00. acct-b: 3 and 4 on the IPv6 address after
# 03:00, and 5 sent on the IPv4 address.

event 1 2026-10-31T00:00Z assign acct-a 2001:db8::10
event 2 2026-10-31T00:00Z assign acct-b 203.0.113.10
event 3 2026-11-01T03:00Z release acct-a 2001:db8::10
event 4 2026-11-01T03:00Z assign acct-b 2001:db8:0:0:0:0:0:10

traffic 2001:db8::10 2026-11-01T02:00Z sent 1000 received 2000
traffic 2001:db8::10 2026-11-01T03:00Z sent 3 received 4
traffic 203.0.113.10 2026-11-01T00:00Z sent 5

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 2001:db8::10 2026-11-01T00:00Z .. 2026-11-01T03:00Z sent 1000 received 2000
expect record acct-b 2001:db8::10 2026-11-01T03:00Z .. 2026-11-01T06:00Z sent 3 received 4
expect record acct-b 203.0.113.10 2026-11-01T00:00Z .. 2026-11-01T06:00Z sent 5 received 0
expect total acct-a sent 1000 received 2000
expect total acct-b sent 8 received 4
# Groups: [00:00, 03:00), [00:00, 06:00) and [03:00, 06:00).
expect plan pieces 3 queries 3 ips 2
expect checkpoint 2026-11-01T06:00Z
