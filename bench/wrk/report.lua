-- Shared by the accord wrk scripts: after the run, print one JSON line (prefixed "WRK_JSON ") with
-- the exact figures bench/server_load.py reads, so nothing depends on wrk's human-readable units.
-- Latencies are microseconds, from wrk's own histogram (corrected for coordinated omission it is not:
-- wrk is a closed-loop tool, each connection sends its next request when the previous answer came).

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
