# Received-only traffic: acct-a's 192.0.2.20 only receives (a download
# mirror), acct-b's 192.0.2.21 only sends.
#
# CloudStack keyed its results on the addresses that sent something and so
# lost every received-only address. Here both are billed: acct-a for
# 4096 + 1024 received bytes, acct-b for 10 sent bytes.

event 1 2026-10-31T00:00Z assign acct-a 192.0.2.20
event 2 2026-10-31T00:00Z assign acct-b 192.0.2.21

traffic 192.0.2.20 2026-11-01T01:00Z received 4096
traffic 192.0.2.20 2026-11-01T04:00Z received 1024
traffic 192.0.2.21 2026-11-01T02:00Z sent 10

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 192.0.2.20 2026-11-01T00:00Z .. 2026-11-01T06:00Z sent 0 received 5120
expect record acct-b 192.0.2.21 2026-11-01T00:00Z .. 2026-11-01T06:00Z sent 10 received 0
expect total acct-a sent 0 received 5120
expect total acct-b sent 10 received 0
expect checkpoint 2026-11-01T06:00Z
