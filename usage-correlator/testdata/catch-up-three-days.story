# Catch-up over three days: the collector was down from 1 November 00:00 and
# comes back on 4 November at 01:30.
#
# With a 2 h settle lag, data is settled up to 3 November 23:30, floored to
# 23:00. With a one-day maximum window that is three cycles: two whole days
# and 3 November up to 23:00. The 999 bytes of the 23:00 bucket wait for the
# next cycle.
#
# acct-a holds 203.0.113.1 throughout: 100, then 200, then 300 bytes.
# acct-b holds 203.0.113.2 from 2 November 12:30 to 3 November 06:00: the
# 12:00 bucket of the 2nd closes under acct-b (10 received); on the 3rd it
# is billed up to 06:00 (20 received); the 40 received after are no one's.

schedule checkpoint 2026-11-01T00:00Z now 2026-11-04T01:30Z lag 2h max-window 1d

event 1 2026-10-20T00:00Z assign acct-a 203.0.113.1
event 2 2026-11-02T12:30Z assign acct-b 203.0.113.2
event 3 2026-11-03T06:00Z release acct-b 203.0.113.2

traffic 203.0.113.1 2026-11-01T10:00Z sent 100
traffic 203.0.113.1 2026-11-02T23:00Z sent 200
traffic 203.0.113.1 2026-11-03T22:00Z sent 300
traffic 203.0.113.1 2026-11-03T23:00Z sent 999
traffic 203.0.113.2 2026-11-02T12:00Z received 10
traffic 203.0.113.2 2026-11-03T05:00Z received 20
traffic 203.0.113.2 2026-11-03T06:00Z received 40

expect window 2026-11-01T00:00Z .. 2026-11-02T00:00Z
expect record acct-a 203.0.113.1 2026-11-01T00:00Z .. 2026-11-02T00:00Z sent 100 received 0
expect checkpoint 2026-11-02T00:00Z

expect window 2026-11-02T00:00Z .. 2026-11-03T00:00Z
expect record acct-a 203.0.113.1 2026-11-02T00:00Z .. 2026-11-03T00:00Z sent 200 received 0
expect record acct-b 203.0.113.2 2026-11-02T12:00Z .. 2026-11-03T00:00Z sent 0 received 10
expect checkpoint 2026-11-03T00:00Z

expect window 2026-11-03T00:00Z .. 2026-11-03T23:00Z
expect record acct-a 203.0.113.1 2026-11-03T00:00Z .. 2026-11-03T23:00Z sent 300 received 0
expect record acct-b 203.0.113.2 2026-11-03T00:00Z .. 2026-11-03T06:00Z sent 0 received 20
expect checkpoint 2026-11-03T23:00Z
