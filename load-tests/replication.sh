#!/bin/sh
# Benchmarks of issue 12 (several nodes), on loopback: a JetStream cluster of three
# nats-server nodes, a writer and two replicas (each `vigie serve` with its own store), nginx with
# config/nginx/vigie-cache.conf in front of the replicas, and — the reference, in the same run —
# one vigie alone on a copy of the same store. Every figure is a vigie-load run whose raw output
# (result.json, terminal output) lands in OUT.
#
#   load-tests/replication.sh OUT [DURATION]     # DURATION of each run, default 10s
#   PRESIGN=false load-tests/replication.sh OUT   # every node with [[ca]] presign = false: the
#                                                 # ingest figures without the two RSA signatures
#                                                 # pre-signing adds per registered certificate
#
# Runs, in order:
#   ingest-alone-single / ingest-alone-batch100      durable ingest, vigie alone (reference)
#   ingest-stream-single / ingest-stream-batch100    the same through the writer, ack = "stream"
#   visibility-writer                                revocation acknowledged -> revoked on the writer
#   visibility-replicas                              revocation acknowledged -> revoked on BOTH replicas
#   ocsp-one-replica / ocsp-two-replicas             cached OCSP GET on one replica, on both at once
#   ocsp-nginx                                       the same through nginx (cache hit rate from its log)
#   ocsp-two-replicas-zipf / ocsp-nginx-zipf         skewed popularity, directly and through nginx
#   ocsp-nginx-zipf-warm                             through nginx again, its cache warm
#
# Needs: target/release/vigie and target/release/vigie-load (cargo build --release --all-targets),
# nats-server, nginx.
set -eu

OUT=${1:?usage: load-tests/replication.sh OUT [DURATION]}
DUR=${2:-10s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
VIGIE=$BIN/vigie
LOAD=$BIN/vigie-load
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d /tmp/vigie-repl-bench.XXXXXX)
PIDS=""

cleanup() {
    for p in $PIDS; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

wait_http() { # URL
    i=0
    until curl -sf -o /dev/null "$1"; do
        i=$((i + 1))
        [ $i -lt 600 ] || { echo "no answer from $1" >&2; exit 1; }
        sleep 0.1
    done
}

{
    echo "commit: $(git -C "$ROOT" rev-parse HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src load-tests config || echo ' (dirty)')"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "note: the machine is shared with other builds; figures are ratios against a reference taken in the same run"
    echo "nats-server: $(nats-server --version)"
    echo "nginx: $(nginx -v 2>&1)"
    echo "duration of each run: $DUR"
} >"$OUT/environment.txt"
cat "$OUT/environment.txt"

# --- the demo PKI and configuration (RSA-2048 CA keys: key generation is fast) -------------
"$VIGIE" demo --dir "$W/demo" --no-serve --ca-bits 2048 \
    --listen 127.0.0.1:18080 --admin-listen 127.0.0.1:18081 >"$W/demo.txt"
cp -a "$W/demo/data" "$W/alone-data"
# The reference keeps its own population file: what it registers is not on the writer.
cp -a "$W/demo" "$W/demo-alone"
if [ "${PRESIGN:-true}" = false ]; then
    sed -i '/^\[\[ca\]\]/a presign = false' "$W/demo/vigie.toml"
    echo "every [[ca]] with presign = false" >>"$OUT/environment.txt"
fi

# A node's configuration: the demo's, with its own listeners, store and published directory.
node_config() { # NAME PUBLIC ADMIN REPLICATION-TOML
    sed -e "s|^listen = \"127.0.0.1:18080\"|listen = \"127.0.0.1:$2\"|" \
        -e "s|^listen = \"127.0.0.1:18081\"|listen = \"127.0.0.1:$3\"|" \
        -e "s|^path = \"data\"|path = \"$W/$1-data\"|" \
        -e "s|^path = \"published\"|path = \"$W/$1-published\"|" \
        "$W/demo/vigie.toml" >"$W/demo/$1.toml"
    printf '%s\n' "$4" >>"$W/demo/$1.toml"
}
NATS_URLS='"nats://127.0.0.1:14221", "nats://127.0.0.1:14222", "nats://127.0.0.1:14223"'
repl() { # ROLE NODE-ID
    printf '[replication]\nrole = "%s"\nnode_id = "%s"\nnats = [%s]\nstream_replicas = 3\nack = "stream"\n' "$1" "$2" "$NATS_URLS"
}
node_config alone 18090 18091 ""
mv "$W/demo/data" "$W/writer-data"
node_config writer 18080 18081 "$(repl writer w1)"
node_config r1 18082 18083 "$(repl replica r1)"
node_config r2 18084 18085 "$(repl replica r2)"
for n in alone writer r1 r2; do "$VIGIE" check --config "$W/demo/$n.toml" >/dev/null; done

start_vigie() { # NAME
    "$VIGIE" serve --config "$W/demo/$1.toml" >"$W/$1.out" 2>"$W/$1.err" &
    PIDS="$PIDS $!"
    eval "PID_$1=$!"
}
run_load() { # LABEL ARGS...
    label=$1
    shift
    demo=$W/demo
    case $label in *-alone-*) demo=$W/demo-alone ;; esac
    echo "== $label: vigie-load $*" | tee "$OUT/$label.txt"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/$label.txt"
    "$LOAD" "$@" --demo-dir "$demo" -d "$DUR" --warmup 2s -q --out "$OUT/$label" --label "$label" \
        >>"$OUT/$label.txt" 2>&1 || { echo "(exit $?)" >>"$OUT/$label.txt"; }
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/$label.txt"
    cat "$OUT/$label.txt"
}

# --- reference: vigie alone ------------------------------------------------------------------
start_vigie alone
wait_http http://127.0.0.1:18090/readyz
run_load ingest-alone-single ingest --url http://127.0.0.1:18090 --admin http://127.0.0.1:18091 \
    --batch 1 --revoke-share 0 --no-visibility -c 16
run_load ingest-alone-batch100 ingest --url http://127.0.0.1:18090 --admin http://127.0.0.1:18091 \
    --batch 100 --revoke-share 0 --no-visibility -c 8
kill "$PID_alone"
wait "$PID_alone" || true

# --- the JetStream cluster, the writer, two replicas ---------------------------------------------
for i in 1 2 3; do
    nats-server -a 127.0.0.1 -p 1422$i -n n$i -js -sd "$W/nats-$i" \
        --cluster_name vigie-bench --cluster nats://127.0.0.1:1622$i \
        --routes nats://127.0.0.1:16221,nats://127.0.0.1:16222,nats://127.0.0.1:16223 \
        2>"$W/nats-$i.log" &
    PIDS="$PIDS $!"
done
start_vigie writer
start_vigie r1
start_vigie r2
for p in 18080 18082 18084; do wait_http http://127.0.0.1:$p/readyz; done

run_load ingest-stream-single ingest --url http://127.0.0.1:18080 --admin http://127.0.0.1:18081 \
    --batch 1 --revoke-share 0 --no-visibility -c 16
run_load ingest-stream-batch100 ingest --url http://127.0.0.1:18080 --admin http://127.0.0.1:18081 \
    --batch 100 --revoke-share 0 --no-visibility -c 8

# A population to revoke and to ask about, registered through the writer.
"$LOAD" seed --demo-dir "$W/demo" --count 20000 --admin http://127.0.0.1:18081 >"$OUT/seed.txt" 2>&1
for p in 18082 18084; do wait_http http://127.0.0.1:$p/readyz; done

# Revocation acknowledged -> revoked: on the writer (reference), then on both replicas.
run_load visibility-writer ingest --url http://127.0.0.1:18080 --admin http://127.0.0.1:18081 \
    --batch 1 --revoke-share 1 -c 4 --rate 50
run_load visibility-replicas ingest \
    --url http://127.0.0.1:18082,http://127.0.0.1:18084 --admin http://127.0.0.1:18081 \
    --batch 1 --revoke-share 1 -c 4 --rate 50

# Cached OCSP (GET, no nonce) on one replica, then on both at once.
run_load ocsp-one-replica ocsp --method get --url http://127.0.0.1:18082 -c 32
run_load ocsp-two-replicas ocsp --method get --url http://127.0.0.1:18082,http://127.0.0.1:18084 -c 32

# --- nginx with config/nginx/vigie-cache.conf in front of both replicas -----------------------
N=$W/nginx
mkdir -p "$N/tmp" "$N/cache"
sed -e "s|/var/cache/nginx/vigie|$N/cache|" \
    -e "s|server 127.0.0.1:8080 max_fails=2 fail_timeout=5s;|server 127.0.0.1:18082 max_fails=2 fail_timeout=5s;\n    server 127.0.0.1:18084 max_fails=2 fail_timeout=5s;|" \
    -e "s|listen 80;|listen 127.0.0.1:18088;|" \
    "$ROOT/config/nginx/vigie-cache.conf" >"$N/vigie-cache.conf"
cp "$N/vigie-cache.conf" "$OUT/nginx-vigie-cache.conf"
user=""
[ "$(id -u)" = 0 ] && user="user root;"
cat >"$N/nginx.conf" <<EOF
$user
worker_processes 2;
daemon off;
pid $N/nginx.pid;
error_log $N/error.log warn;
events { worker_connections 1024; }
http {
  log_format cache '\$upstream_cache_status \$status';
  access_log $N/access.log cache;
  client_body_temp_path $N/tmp;
  proxy_temp_path $N/tmp;
  fastcgi_temp_path $N/tmp;
  uwsgi_temp_path $N/tmp;
  scgi_temp_path $N/tmp;
  include $N/vigie-cache.conf;
}
EOF
nginx -p "$N" -e "$N/error.log" -c "$N/nginx.conf" &
PIDS="$PIDS $!"
wait_http http://127.0.0.1:18088/readyz
run_load ocsp-nginx ocsp --method get --url http://127.0.0.1:18088 -c 32 \
    --server-pid "$PID_r1" --server-pid "$PID_r2"
{
    echo "nginx cache statuses over the whole ocsp-nginx run (warm-up included), from its access log:"
    awk '{print $1}' "$N/access.log" | sort | uniq -c
} | tee "$OUT/nginx-cache-status.txt"

# Skewed popularity (zipf:1, as relying parties ask about a few certificates far more than the
# rest): both replicas directly (reference), then through nginx, its cache emptied first.
run_load ocsp-two-replicas-zipf ocsp --method get --url http://127.0.0.1:18082,http://127.0.0.1:18084 \
    -c 32 --distribution zipf:1
kill "$(cat "$N/nginx.pid")"
sleep 1
rm -rf "$N/cache" && mkdir -p "$N/cache"
: >"$N/access.log"
nginx -p "$N" -e "$N/error.log" -c "$N/nginx.conf" &
PIDS="$PIDS $!"
wait_http http://127.0.0.1:18088/readyz
: >"$N/access.log"
run_load ocsp-nginx-zipf ocsp --method get --url http://127.0.0.1:18088 -c 32 --distribution zipf:1 \
    --server-pid "$PID_r1" --server-pid "$PID_r2"
{
    echo "nginx cache statuses over the whole ocsp-nginx-zipf run (warm-up included; the cache was empty at its start), from its access log:"
    awk '{print $1}' "$N/access.log" | sort | uniq -c
} | tee "$OUT/nginx-cache-status-zipf.txt"
# The same again, the cache now warm (what a front that has been running sees).
: >"$N/access.log"
run_load ocsp-nginx-zipf-warm ocsp --method get --url http://127.0.0.1:18088 -c 32 --distribution zipf:1 \
    --server-pid "$PID_r1" --server-pid "$PID_r2"
{
    echo "nginx cache statuses over the whole ocsp-nginx-zipf-warm run (warm-up included; the cache kept what ocsp-nginx-zipf put in it), from its access log:"
    awk '{print $1}' "$N/access.log" | sort | uniq -c
} | tee "$OUT/nginx-cache-status-zipf-warm.txt"
