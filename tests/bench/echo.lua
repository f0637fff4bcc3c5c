-- wrk script: POST the same small JSON body to the echo routes.
wrk.method = "POST"
wrk.body = '{"name":"Ada Lovelace"}'
wrk.headers["Content-Type"] = "application/json"
