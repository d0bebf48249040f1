-- POST one beacon per request and tally response statuses. Requests look like real page views:
-- identifiers cycle over 500 pages, user agents over 5 browsers, X-Forwarded-For over 1,000
-- public addresses (read when BEACONS_CLIENT_IP_HEADER names it); one in 4 sends a search
-- referrer, one in 8 campaign tags. What is extracted depends on the type's breakdowns.
-- wrk -s bench/wrk_beacons.lua URL -- <event_type>
-- bench/request_mix.py is the same mix for the benchmarks in process: change both together.
local threads = {}

local agents = {
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
  "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36",
}
local referrers = {
  "https://www.google.com/", "", "https://news.ycombinator.com/item?id=42", "", "https://blog.someone.org/a-post", "", "", "",
}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  counter = 0
  event_type = args[1] or "page_view"
  wrk.method = "POST"
end

function request()
  counter = counter + 1
  local extra = ""
  local referrer = referrers[counter % #referrers + 1]
  if referrer ~= "" then
    extra = string.format(',"referrer":"%s"', referrer)
  end
  if counter % 8 == 0 then
    extra = extra .. ',"utm_source":"newsletter","utm_medium":"email","utm_campaign":"spring"'
  end
  local body = string.format('{"event_type":"%s","identifier":"/page/%d"%s}', event_type, counter % 500, extra)
  local n = counter % 1000
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = agents[counter % #agents + 1],
    ["X-Forwarded-For"] = string.format("%d.%d.%d.%d", 20 + n % 180, (n * 7) % 256, (n * 13) % 256, 1 + n % 250),
  }
  return wrk.format(nil, nil, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status %d %d\n", status, n))
  end
  io.write(string.format("p50_us %d\np99_us %d\n", latency:percentile(50), latency:percentile(99)))
  io.write(string.format("duration_us %d\nrequests %d\n", summary.duration, summary.requests))
  local e = summary.errors
  io.write(string.format("socket_errors %d\n", e.connect + e.read + e.write + e.timeout))
end
