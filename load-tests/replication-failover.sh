#!/bin/sh
# Issue 12: how long durable ingest (ack = "stream") stalls when the NATS node leading the
# stream is killed (kill -9), on loopback. A JetStream cluster of three nats-server nodes (with
# monitoring ports, to find the stream's leader), one writer; vigie-load sends single
# issuances sequentially-ish (4 connections, 30 s request timeout) for DURATION; KILL_AT
# seconds into the run the stream leader is killed. The stall is the longest ingest answer
# (every answer is 200 unless it exceeded [replication] max_staleness, 10 s, then 503), and
# the nats-server logs say when the new leader was elected.
#
#   load-tests/replication-failover.sh OUT [DURATION] [KILL_AT]   # defaults 20s, 8
#
# Needs: target/release/vigie and target/release/vigie-load, nats-server, jq, curl.
set -eu

OUT=${1:?usage: load-tests/replication-failover.sh OUT [DURATION] [KILL_AT]}
DUR=${2:-20s}
KILL_AT=${3:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
VIGIE=$BIN/vigie
LOAD=$BIN/vigie-load
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d /tmp/vigie-repl-failover.XXXXXX)
PIDS=""

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
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
    echo "nats-server: $(nats-server --version)"
    echo "run: $DUR, stream leader killed $KILL_AT s after the start (warm-up 2 s included)"
} >"$OUT/environment.txt"
cat "$OUT/environment.txt"

"$VIGIE" demo --dir "$W/demo" --no-serve --ca-bits 2048 \
    --listen 127.0.0.1:18080 --admin-listen 127.0.0.1:18081 >"$W/demo.txt"
sed -e "s|^path = \"data\"|path = \"$W/writer-data\"|" \
    -e "s|^path = \"published\"|path = \"$W/writer-published\"|" \
    "$W/demo/vigie.toml" >"$W/demo/writer.toml"
mv "$W/demo/data" "$W/writer-data"
printf '[replication]\nrole = "writer"\nnode_id = "w1"\nnats = ["nats://127.0.0.1:14221", "nats://127.0.0.1:14222", "nats://127.0.0.1:14223"]\nstream_replicas = 3\nack = "stream"\n' \
    >>"$W/demo/writer.toml"

for i in 1 2 3; do
    nats-server -a 127.0.0.1 -p 1422$i -m 1822$i -n n$i -js -sd "$W/nats-$i" \
        --cluster_name vigie-failover --cluster nats://127.0.0.1:1622$i \
        --routes nats://127.0.0.1:16221,nats://127.0.0.1:16222,nats://127.0.0.1:16223 \
        2>"$W/nats-$i.log" &
    PIDS="$PIDS $!"
    eval "NATS_$i=$!"
done
VIGIE_LOG=info "$VIGIE" serve --config "$W/demo/writer.toml" >"$W/writer.out" 2>"$W/writer.err" &
WRITER=$!
PIDS="$PIDS $WRITER"
wait_http http://127.0.0.1:18080/readyz

leader() {
    for i in 1 2 3; do
        l=$(curl -sf "http://127.0.0.1:1822$i/jsz?accounts=true&streams=true" 2>/dev/null |
            jq -r '.account_details[]?.stream_detail[]? | select(.name == "VIGIE") | .cluster.leader' 2>/dev/null || true)
        [ -n "$l" ] && [ "$l" != null ] && { echo "$l"; return; }
    done
}

(
    sleep "$KILL_AT"
    l=$(leader)
    n=${l#n}
    eval "pid=\$NATS_$n"
    echo "$(date -u +%H:%M:%S.%N) stream leader $l (pid $pid) killed (kill -9)" >>"$OUT/events.txt"
    kill -9 "$pid"
    t0=$(date +%s.%N)
    until [ -n "$(leader)" ] && [ "$(leader)" != "$l" ]; do sleep 0.05; done
    t1=$(date +%s.%N)
    echo "$(date -u +%H:%M:%S.%N) new stream leader $(leader), $(echo "$t1 - $t0" | bc) s after the kill (seen on the monitoring endpoints, polled every 50 ms)" >>"$OUT/events.txt"
) &
KILLER=$!

echo "== vigie-load ingest --batch 1 -c 4 --timeout 30s -d $DUR" | tee "$OUT/ingest.txt"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/ingest.txt"
"$LOAD" ingest --url http://127.0.0.1:18080 --admin http://127.0.0.1:18081 --demo-dir "$W/demo" \
    --batch 1 --revoke-share 0 --no-visibility -c 4 --timeout 30s -d "$DUR" --warmup 2s -q \
    --out "$OUT/ingest" --label failover --server-pid "$WRITER" >>"$OUT/ingest.txt" 2>&1 ||
    echo "(exit $?)" >>"$OUT/ingest.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/ingest.txt"
wait "$KILLER" || true
cat "$OUT/ingest.txt" "$OUT/events.txt"
{
    echo "ingest answers per second (timeline of result.json):"
    jq -c '.timeline[] | {t, kinds: [.kinds[] | del(.kind)]}' "$OUT/ingest/result.json" 2>/dev/null || true
} >"$OUT/timeline.txt"
sed 's/\x1b\[[0-9;]*m//g' "$W/writer.err" | grep -E "WARN|ERROR|INFO vigie::replicate" >"$OUT/writer-log.txt" || true
for i in 1 2 3; do grep -iE "leader|lost|elect" "$W/nats-$i.log" | tail -20 >"$OUT/nats-$i-leadership.txt" || true; done
