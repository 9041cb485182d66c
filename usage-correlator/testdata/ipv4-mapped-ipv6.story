# An IPv4-mapped IPv6 address is the IPv4 address: ::ffff:203.0.113.10 and
# 203.0.113.10 are one address in events and traffic alike.
#
# acct-a is assigned ::ffff:203.0.113.10; acct-b is assigned 203.0.113.10 at
# 03:00 with no release: one address, so the takeover is reported and closes
# acct-a's holding. Traffic logged under either spelling is the same
# address's. acct-a is billed the 01:00 and 02:00 buckets (10 + 20), acct-b
# the 03:00 bucket (30).

event 1 2026-11-01T01:00Z assign acct-a ::ffff:203.0.113.10
event 2 2026-11-01T03:00Z assign acct-b 203.0.113.10

traffic 203.0.113.10 2026-11-01T01:00Z sent 10
traffic 203.0.113.10 2026-11-01T02:00Z sent 20
traffic 203.0.113.10 2026-11-01T03:00Z sent 30

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 203.0.113.10 2026-11-01T01:00Z .. 2026-11-01T03:00Z sent 30 received 0
expect record acct-b 203.0.113.10 2026-11-01T03:00Z .. 2026-11-01T06:00Z sent 30 received 0
expect anomaly 2 assign-while-held-by-other
expect plan pieces 2 queries 2 ips 1
expect checkpoint 2026-11-01T06:00Z
