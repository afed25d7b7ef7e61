#!/usr/bin/env bash
# go tool task cluster: Redis, three tandem nodes, nginx (deploy/nginx/
# tandem.conf) and Prometheus (deploy/prometheus/prometheus.yml, scraping the
# nodes' ADMIN_ADDR) on loopback ports, in the foreground; Ctrl-C stops them
# all. Ports: nginx NGINX_PORT (8080), nodes 127.0.0.1:NODE_PORT..+2
# (3001-3003), their operator's listeners ADMIN_PORT..+2 (9465-9467), Redis
# REDIS_PORT (6390), Prometheus PROMETHEUS_PORT (9090).
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || {
    echo "cluster: $1 is missing: $2" >&2
    exit 1
  }
}
need redis-server "install it (Debian: apt-get install redis-server)"
need nginx "install it (Debian: apt-get install nginx)"
need prometheus "install it (Debian: apt-get install prometheus)"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

nginx_port=${NGINX_PORT:-8080}
redis_port=${REDIS_PORT:-6390}
node_port=${NODE_PORT:-3001}
admin_port=${ADMIN_PORT:-9465}
prometheus_port=${PROMETHEUS_PORT:-9090}
dir=$(mktemp -d "${TMPDIR:-/tmp}/tandem-cluster.XXXXXX")
pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap stop INT TERM EXIT

go build -o "$dir/tandem" ./server/cmd/tandem

redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir" --save "" --appendonly no \
  --daemonize no --logfile "$dir/redis.log" &
pids+=($!)

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
targets=""
for i in 0 1 2; do
  port=$((node_port + i))
  admin="127.0.0.1:$((admin_port + i))"
  targets="$targets          - $admin\n"
  LISTEN_HOST=127.0.0.1 PORT=$port ADMIN_ADDR=$admin SESSION_STORE="redis://127.0.0.1:$redis_port/0" SESSION_SECRET="$secret" \
    PUBLIC_URL="http://localhost:$nginx_port" TRUSTED_PROXIES=127.0.0.1/32 \
    DATA_DIR="$dir/node$i" "$dir/tandem" > >(sed "s/^/node$((i + 1)): /") 2>&1 &
  pids+=($!)
done

mkdir -p "$dir/nginx"
# The shipped site, with this run's listen address and node ports.
sed -e "s/listen 127.0.0.1:8080;/listen 127.0.0.1:$nginx_port;/" \
  -e "s/server 127.0.0.1:3001 /server 127.0.0.1:$node_port /" \
  -e "s/server 127.0.0.1:3002 /server 127.0.0.1:$((node_port + 1)) /" \
  -e "s/server 127.0.0.1:3003 /server 127.0.0.1:$((node_port + 2)) /" \
  deploy/nginx/tandem.conf >"$dir/nginx/tandem.conf"
user=""
[ "$(id -u)" -eq 0 ] && user="user root;"
cat >"$dir/nginx/nginx.conf" <<CONF
$user
daemon off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    include $dir/nginx/tandem.conf;
}
CONF
"$nginx_bin" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" &
pids+=($!)

# The shipped scrape configuration, with this run's three nodes as targets.
mkdir -p "$dir/prometheus"
awk -v targets="$targets" '
  /^[[:space:]]*- 127\.0\.0\.1:[0-9]+/ { if (!done) { printf "%s", targets; done = 1 }; next }
  { print }' deploy/prometheus/prometheus.yml >"$dir/prometheus/prometheus.yml"
prometheus --config.file="$dir/prometheus/prometheus.yml" --storage.tsdb.path="$dir/prometheus/data" \
  --web.listen-address="127.0.0.1:$prometheus_port" --log.level=warn > >(sed "s/^/prometheus: /") 2>&1 &
pids+=($!)

echo "cluster: http://localhost:$nginx_port (nginx -> nodes :$node_port-$((node_port + 2)) -> Redis :$redis_port); Ctrl-C stops it"
echo "cluster: Prometheus http://127.0.0.1:$prometheus_port (targets: the nodes' /metrics on 127.0.0.1:$admin_port-$((admin_port + 2)); dashboard: deploy/grafana/tandem-dashboard.json)"
wait -n
echo "cluster: a process exited; stopping the others" >&2
