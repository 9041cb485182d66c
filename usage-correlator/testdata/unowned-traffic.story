# Traffic on an address nobody holds: the log is empty, yet 203.0.113.200
# moved bytes (scans, or an address the cloud has not handed out).
#
# Nothing is asked and nothing is billed; the checkpoint advances all the
# same, so the window is never collected again.

traffic 203.0.113.200 2026-11-01T01:00Z sent 12345 received 678

window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
expect no records
expect plan pieces 0 queries 0 ips 0
expect checkpoint 2026-11-01T06:00Z
