#!/usr/bin/env bash
# go tool task cluster: Redis, three tandem nodes and nginx (deploy/nginx/
# tandem.conf) on loopback ports, in the foreground; Ctrl-C stops them all.
# Ports: nginx NGINX_PORT (8080), nodes 127.0.0.1:3001-3003, Redis REDIS_PORT (6390).
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
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

nginx_port=${NGINX_PORT:-8080}
redis_port=${REDIS_PORT:-6390}
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
for i in 1 2 3; do
  LISTEN_HOST=127.0.0.1 PORT=300$i SESSION_STORE="redis://127.0.0.1:$redis_port/0" SESSION_SECRET="$secret" \
    PUBLIC_URL="http://localhost:$nginx_port" TRUSTED_PROXIES=127.0.0.1/32 \
    DATA_DIR="$dir/node$i" "$dir/tandem" > >(sed "s/^/node$i: /") 2>&1 &
  pids+=($!)
done

mkdir -p "$dir/nginx"
sed "s/listen 127.0.0.1:8080;/listen 127.0.0.1:$nginx_port;/" deploy/nginx/tandem.conf >"$dir/nginx/tandem.conf"
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

echo "cluster: http://localhost:$nginx_port (nginx -> nodes :3001 :3002 :3003 -> Redis :$redis_port); Ctrl-C stops it"
wait -n
echo "cluster: a process exited; stopping the others" >&2
