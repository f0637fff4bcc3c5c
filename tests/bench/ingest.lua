-- wrk script: signed GitHub `push` deliveries of one 2 KB body, each with its
-- own X-GitHub-Delivery id (the signature covers the body only, so one
-- signature serves every request). scripts/bench-ingest sets the variables.
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = file:read("*a")
file:close()
local signature = os.getenv("BENCH_SIGNATURE")
local run = os.getenv("BENCH_RUN") or "run"
local threads = 0
local counter = 0

function setup(thread)
  threads = threads + 1
  thread:set("lane", threads)
end

function request()
  counter = counter + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = run .. "-" .. lane .. "-" .. counter,
    ["X-Hub-Signature-256"] = signature,
  }, body)
end
