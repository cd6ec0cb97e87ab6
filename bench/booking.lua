-- wrk script for bench/booking.py: every request posts a new job booking two different
-- product.features (1 to 3 licenses each), like a prolog; the summary is printed as JSON.
-- Arguments (after --): bearer token, job id prefix, then the product.feature names.

local token, prefix, names
local posted = 0
statuses = {}

function setup(thread)
   thread:set("thread_number", tostring(#threads_seen + 1))
   table.insert(threads_seen, thread)
end
threads_seen = {}

function init(args)
   token, prefix = args[1], args[2] .. "-" .. thread_number
   names = {}
   for i = 3, #args do names[#names + 1] = args[i] end
   math.randomseed(os.time() + tonumber(thread_number))
end

function request()
   posted = posted + 1
   local first = math.random(#names)
   local second = math.random(#names - 1)
   if second >= first then second = second + 1 end
   local body = string.format(
      '{"slurm_job_id":"%s-%d","username":"bench","lead_host":"node001","bookings":['
         .. '{"product_feature":"%s","quantity":%d},{"product_feature":"%s","quantity":%d}]}',
      prefix, posted, names[first], math.random(3), names[second], math.random(3))
   return wrk.format("POST", "/lm/jobs",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

function response(status)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency)
   local totals, counts = {}, {}
   for _, thread in ipairs(threads_seen) do
      for status, count in pairs(thread:get("statuses")) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   for status, count in pairs(totals) do
      counts[#counts + 1] = string.format('"%d":%d', status, count)
   end
   io.write(string.format(
      'WRK_RESULT {"requests":%d,"duration_us":%d,"socket_errors":%d,'
         .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"statuses":{%s}}\n',
      summary.requests, summary.duration,
      summary.errors.connect + summary.errors.read + summary.errors.write
         + summary.errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      table.concat(counts, ",")))
end
