-- POST /incr cycling over the session cookies in $COOKIES (one Cookie header a line)
local cookies = {}
for line in io.lines(os.getenv("COOKIES")) do cookies[#cookies + 1] = line end
local i = math.random(#cookies)
request = function()
  i = i % #cookies + 1
  return wrk.format("POST", "/incr", { ["Cookie"] = cookies[i], ["Content-Length"] = "0" }, "")
end
