#!/bin/sh
# dev harness: nats x3 + writer (+ optional replicas), run ingest loads. usage: dev.sh OUT [DUR]
set -eu
OUT=$1; DUR=${2:-5s}
ROOT=/work/wt12
BIN=${BIN:-/work/targets/repl2/release}
VIGIE=$BIN/vigie; LOAD=$BIN/vigie-load
mkdir -p "$OUT"
W=$(mktemp -d /tmp/wt12/run.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done; sleep 1; for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
wait_http() { i=0; until curl -sf -o /dev/null "$1"; do i=$((i+1)); [ $i -lt 600 ] || { echo "no answer from $1"; exit 1; }; sleep 0.1; done; }
"$VIGIE" demo --dir "$W/demo" --no-serve --ca-bits 2048 --listen 127.0.0.1:18080 --admin-listen 127.0.0.1:18081 >"$W/demo.txt"
node_config() {
    sed -e "s|^listen = \"127.0.0.1:18080\"|listen = \"127.0.0.1:$2\"|" \
        -e "s|^listen = \"127.0.0.1:18081\"|listen = \"127.0.0.1:$3\"|" \
        -e "s|^path = \"data\"|path = \"$W/$1-data\"|" \
        -e "s|^path = \"published\"|path = \"$W/$1-published\"|" \
        "$W/demo/vigie.toml" >"$W/demo/$1.toml"
    printf '%s\n' "$4" >>"$W/demo/$1.toml"
}
NATS_URLS='"nats://127.0.0.1:14221", "nats://127.0.0.1:14222", "nats://127.0.0.1:14223"'
repl() { printf '[replication]\nrole = "%s"\nnode_id = "%s"\nnats = [%s]\nstream_replicas = 3\nack = "stream"\n' "$1" "$2" "$NATS_URLS"; }
mv "$W/demo/data" "$W/writer-data"
node_config writer 18080 18081 "$(repl writer w1)"
for i in 1 2 3; do
    nats-server -a 127.0.0.1 -p 1422$i -n n$i -js -sd "$W/nats-$i" --cluster_name vigie-bench --cluster nats://127.0.0.1:1622$i \
        --routes nats://127.0.0.1:16221,nats://127.0.0.1:16222,nats://127.0.0.1:16223 2>"$W/nats-$i.log" &
    PIDS="$PIDS $!"
done
VIGIE_LOG=${VIGIE_LOG:-info} "$VIGIE" serve --config "$W/demo/writer.toml" >"$W/writer.out" 2>"$W/writer.err" &
WPID=$!; PIDS="$PIDS $WPID"
wait_http http://127.0.0.1:18080/readyz
for b in ${BATCHES:-1 100}; do
  c=16; [ $b = 1 ] || c=8
  echo "== stream batch $b" | tee -a "$OUT/log"
  if [ -n "${PERF:-}" ]; then (sleep 3; perf record -F 499 -g -p $WPID -o "$OUT/perf-$b.data" -- sleep 4 >/dev/null 2>&1) & fi
  "$LOAD" ingest --url http://127.0.0.1:18080 --admin http://127.0.0.1:18081 --batch $b --revoke-share 0 --no-visibility -c $c \
     --demo-dir "$W/demo" -d "$DUR" --warmup 1s -q --server-pid $WPID >>"$OUT/log" 2>&1 || echo "exit $?" >> "$OUT/log"
done
cp "$W/writer.err" "$OUT/writer.err"
cat "$OUT/log"
