-- Request a random path from a file (one path a line); optional Authorization from the env.
local paths = {}
local auth = os.getenv("BENCH_AUTH")

init = function(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  math.randomseed(os.time() + tonumber(string.sub(tostring({}), -6), 16))
end

request = function()
  local headers = {}
  if auth ~= nil and auth ~= "" then
    headers["Authorization"] = auth
  end
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
