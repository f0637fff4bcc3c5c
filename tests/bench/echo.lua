-- wrk script: POST the same small JSON body to the echo routes, with the token
-- scripts/bench exports (the native twin ignores it).
wrk.method = "POST"
wrk.body = '{"name":"Ada Lovelace"}'
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("DEVPULSE_TOKEN")
if token then
  wrk.headers["Authorization"] = "Bearer " .. token
end
