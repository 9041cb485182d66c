# Sub-bucket allocation: 10.3.0.1 passes from acct-a to acct-b at 02:10 and
# from acct-b to acct-c at 02:50. acct-b held it for 40 minutes, inside the
# single 02:00 bucket.
#
# Traffic Sentinel cannot tell bytes apart within a bucket, so each bucket
# goes to the account holding the address when it closes: the 02:00 bucket
# closes at 03:00 under acct-c. acct-b's holding floors to nothing and is
# dropped; its bucket's 500 sent and 5 received bytes go to its neighbour
# acct-c. acct-a: 10. acct-c: 500 + 1 sent, 5 received.

event 1 2026-10-31T00:00Z assign acct-a 10.3.0.1
event 2 2026-11-01T02:10Z release acct-a 10.3.0.1
event 3 2026-11-01T02:10Z assign acct-b 10.3.0.1
event 4 2026-11-01T02:50Z release acct-b 10.3.0.1
event 5 2026-11-01T02:50Z assign acct-c 10.3.0.1

traffic 10.3.0.1 2026-11-01T01:00Z sent 10
traffic 10.3.0.1 2026-11-01T02:00Z sent 500 received 5
traffic 10.3.0.1 2026-11-01T03:00Z sent 1

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect record acct-a 10.3.0.1 2026-11-01T00:00Z .. 2026-11-01T02:00Z sent 10 received 0
expect record acct-c 10.3.0.1 2026-11-01T02:00Z .. 2026-11-01T06:00Z sent 501 received 5
expect plan pieces 2 queries 2 ips 1
expect checkpoint 2026-11-01T06:00Z
