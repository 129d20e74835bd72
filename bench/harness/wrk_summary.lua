-- wrk prints one line "BENCHJSON {...}" when the run ends: counts, errors and latency
-- percentiles in microseconds (read by bench/harness/phases.py).
done = function(summary, latency, requests)
  local errs = summary.errors
  local fields = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"connect_errors":%d', errs.connect),
    string.format('"read_errors":%d', errs.read),
    string.format('"write_errors":%d', errs.write),
    string.format('"timeouts":%d', errs.timeout),
    string.format('"non2xx":%d', errs.status),
    string.format('"p50_us":%d', latency:percentile(50.0)),
    string.format('"p90_us":%d', latency:percentile(90.0)),
    string.format('"p99_us":%d', latency:percentile(99.0)),
    string.format('"max_us":%d', latency.max),
    string.format('"mean_us":%.1f', latency.mean),
  }
  io.write("BENCHJSON {" .. table.concat(fields, ",") .. "}\n")
end
