#!/bin/bash
# Compare tandem with the Node recipe on this machine, as e2e/BENCHMARKS.md does:
# a fresh server per measurement, the two alternated (order reversed each round).
#
#   NODE_BENCH=/path/to/copy/of/shared/bench ROUNDS=3 e2e/compare/run.sh OUTDIR
#
# NODE_BENCH is a writable copy of ../shared/bench with `npm ci` run in it and in
# its seed-node/ (see its README). TANDEM_BIN measures that tandem binary instead
# of one built from this tree. Needs wrk, curl, node, ss. Loopback only; every
# step is bounded by a timeout. Results: OUTDIR/{wrk,b1k,go1k,b10k}-{tandem,node}-ROUND.*
set -u
OUT=${1:?usage: NODE_BENCH=... e2e/compare/run.sh OUTDIR}
B=${NODE_BENCH:?set NODE_BENCH to a prepared copy of ../shared/bench}
ROUNDS=${ROUNDS:-3}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
mkdir -p "$OUT"; W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
(cd "$ROOT" && go build -o "$W/gobench" ./internal/cmd/bench) || exit 1
if [ -n "${TANDEM_BIN:-}" ]; then cp "$TANDEM_BIN" "$W/tandem" || exit 1   # e.g. a build against a patched library
else (cd "$ROOT" && go build -o "$W/tandem" ./server/cmd/tandem) || exit 1; fi
start() { # start NAME: sets PID and URL; fails unless the port is served by that process
  local port
  case $1 in
  tandem) port=39317; mkdir -p "$W/data"
    PORT=$port SESSION_STORE=memory SESSION_SECRET=$(printf 'k%.0s' {1..40}) DATA_DIR="$W/data" WEB_DIR="$W/noweb" \
      SESSION_CREATE_BURST=1000000 SESSION_CREATE_RATE=1000000 MAX_CONNS_PER_CLIENT=1000000 SOCKETS_PER_CLIENT=off ENGINE_CONNS_PER_CLIENT=off SESSION_CREATE_GLOBAL_RATE=off LOG_LEVEL=error \
      "$W/tandem" >>"$OUT/tandem.log" 2>&1 & PID=$! ;;
  node) port=39318; PORT=$port node "$B/seed-node/server.js" >>"$OUT/node.log" 2>&1 & PID=$! ;;
  esac
  URL=http://127.0.0.1:$port
  for _ in $(seq 1 150); do
    if curl -sf -o /dev/null "$URL/session"; then
      ss -ltnp | grep ":$port " | grep -q "pid=$PID," && return 0
      echo "port $port is not served by $1 ($PID)" >&2; return 1
    fi
    sleep 0.2
  done
  echo "server $1 did not start" >&2; return 1
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; sleep 1; }
cookies() { # 1000 sessions, one Cookie header a line
  for _ in $(seq 1 1000); do
    curl -s -m 10 -o /dev/null -D - -X POST "$URL/incr" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | paste -sd';' -
  done > "$W/cookies.txt"
}
for r in $(seq 1 "$ROUNDS"); do
  order="tandem node"; [ $((r % 2)) = 0 ] && order="node tandem"
  for s in $order; do
    start $s || exit 1
    cookies
    COOKIES="$W/cookies.txt" timeout 60 wrk -t2 -c64 -d10s -s "$HERE/incr.lua" "$URL" > "$OUT/wrk-$s-$r.txt" 2>&1
    stop
    start $s || exit 1
    timeout 200 node "$B/bench.mjs" --url "$URL" --sockets 1000 --rate 1000 --duration 10 --pid $PID > "$OUT/b1k-$s-$r.json" 2>"$OUT/b1k-$s-$r.err"
    stop
    start $s || exit 1
    timeout 200 "$W/gobench" -url "$URL" -pid $PID -sockets 1000 -rate 1000 -duration 10s > "$OUT/go1k-$s-$r.json" 2>"$OUT/go1k-$s-$r.err"
    stop
    start $s || exit 1
    timeout 400 node "$B/bench.mjs" --url "$URL" --sockets 10000 --rate 200 --duration 10 --connect-concurrency 100 --pid $PID > "$OUT/b10k-$s-$r.json" 2>"$OUT/b10k-$s-$r.err"
    stop
  done
done
echo "done: $OUT"
