#!/usr/bin/env bash
# Pre-signing a national population (issue 16): time to pre-sign COUNT certificates of one CA,
# memory and disk at that size, then the uniform-population throughput against the single hot
# serial of the same server in the same minutes.
#
#   load-tests/population.sh [COUNT] [CA] [OUT]
#       COUNT  certificates (default 1000000)
#       CA     aci-el-org (ECDSA P-256 signer, default) or aci-el-pp (RSA-2048 signer)
#       OUT    default load-tests/results/<date>-population-<CA>-<COUNT>
#
# 1. `vigie demo --ca-bits 2048 --no-serve` makes the PKI; load-tests/scripts/index-population.py
#    writes COUNT certificates of CA (10 % revoked) as an OpenSSL index, `vigie import` loads it;
# 2. `vigie serve` with the demo's configuration (default [ocsp]: 2 signing threads,
#    presign_share 0.5, SHA-1 and SHA-256 answers); while the first pass runs, one short
#    ocsp-population run shows requests answered during pre-signing; the pass's start and end
#    come from the server's log (`pre-signing: pass complete`), `vigie_ocsp_presign_pending`
#    is sampled every 5 s into presign-pending.tsv;
# 3. after the pass: RSS (VmRSS, VmHWM), the store's size on disk (du) and RocksDB's own
#    estimate; then ROUNDS rounds, each the uniform population run then the hot-serial run
#    (`--distribution hot:0.000001:1`), D seconds each: ratio = uniform / hot req/s, per round
#    and median, with `vigie_ocsp_signing_seconds_count` before and after each run (signatures
#    on the request path: the counter must not move during uniform runs once pre-signed).
#
# Environment: ROUNDS (3), D (10s), DURING (20s; 0 to skip the run during pre-signing),
# SKIP_BUILD=1 (use the binaries in the target directory), BIN_DIR=DIR (binaries from DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000000}
CA=${2:-aci-el-org}
OUT=${3:-load-tests/results/$(date -u +%Y-%m-%d)-population-$CA-$COUNT}
ROUNDS=${ROUNDS:-3}
D=${D:-10s}
DURING=${DURING:-20s}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ -n "${BIN_DIR:-}" ]; then
  VIGIE=$BIN_DIR/vigie
  LOAD=$BIN_DIR/vigie-load
else
  [ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet -p vigie --bin vigie -p vigie-load --bin vigie-load
  TARGET=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  VIGIE=$TARGET/release/vigie
  LOAD=$TARGET/release/vigie-load
fi

WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

PUBLIC=127.0.0.1:18680
ADMIN=127.0.0.1:18681
DEMO=$WORK/demo
{
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock load-tests/src || echo ' (dirty)')"
  echo "binaries: $VIGIE (built $(date -u -r "$VIGIE" +%FT%TZ))"
  echo "date: $(date -u +%FT%TZ)"
  echo "machine: $(nproc) cores, $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "population: $COUNT certificates of $CA (10 % revoked)"
} >"$OUT/environment.txt"
cat "$OUT/environment.txt"

"$VIGIE" demo --dir "$DEMO" --listen "$PUBLIC" --admin-listen "$ADMIN" --ca-bits 2048 --no-serve \
  >"$WORK/demo.log" 2>&1
rm -f "$DEMO/population.jsonl"
python3 load-tests/scripts/index-population.py --ca "$CA" --count "$COUNT" \
  --index "$WORK/population.idx" --population "$DEMO/population.jsonl"
/usr/bin/time -f "import: %e s, max RSS %M kB" "$VIGIE" import --config "$DEMO/vigie.toml" \
  --ca "$CA" "$WORK/population.idx" 2>&1 | tail -3 | tee "$OUT/import.txt"

metric() { # name, label filter -> value (0 when absent)
  curl -sf "http://$ADMIN/metrics" | awk -v n="$1" -v f="$2" \
    'index($0, n) == 1 && (f == "" || index($0, f)) { v = $NF } END { print (v == "" ? 0 : v) }'
}

"$VIGIE" serve --config "$DEMO/vigie.toml" >"$OUT/server.log" 2>&1 &
SERVER=$!
STARTED=$(date +%s.%N)
for _ in $(seq 1 600); do
  if curl -sf "http://$ADMIN/readyz" >/dev/null; then break; fi
  sleep 0.2
done
curl -sf "http://$ADMIN/readyz" >/dev/null || {
  echo "vigie did not become ready" >&2
  exit 1
}
echo "ready after $(echo "$(date +%s.%N) - $STARTED" | bc) s" | tee "$OUT/ready.txt"

# The pending count and the server's resident memory, every 5 s, until the pass for CA is
# complete.
(
  printf 'seconds\tpending\trss_kib\n'
  while kill -0 "$SERVER" 2>/dev/null; do
    printf '%s\t%s\t%s\n' "$(echo "$(date +%s.%N) - $STARTED" | bc)" \
      "$(metric vigie_ocsp_presign_pending "ca=\"$CA\"")" \
      "$(awk '/^VmRSS/ { print $2 }' "/proc/$SERVER/status" 2>/dev/null)"
    grep -q "pass complete ca=$CA" "$OUT/server.log" && break
    sleep 5
  done
) >"$OUT/presign-pending.tsv" &
SAMPLER=$!

common=(--demo-dir "$DEMO" --url "http://$PUBLIC" --admin "http://$ADMIN" --cas "$CA" -q)
if [ "$DURING" != 0 ]; then
  "$LOAD" run load-tests/scenarios/ocsp-population.toml "${common[@]}" -d "$DURING" \
    --warmup 1s --out "$OUT/during-presign" --label during-presign >"$OUT/during-presign.txt" 2>&1
  tail -8 "$OUT/during-presign.txt"
fi
until grep -q "pass complete ca=$CA" "$OUT/server.log"; do
  kill -0 "$SERVER" || {
    echo "the server stopped" >&2
    exit 1
  }
  sleep 2
done
wait "$SAMPLER" || true
grep "pre-signing" "$OUT/server.log" | grep "ca=$CA" >"$OUT/presign.txt"
tail -1 "$OUT/presign.txt"

{
  grep -E 'VmRSS|VmHWM|RssAnon|RssFile' "/proc/$SERVER/status"
  echo "store on disk (du -sb): $(du -sb "$DEMO/data" | cut -f1) bytes"
  du -sh "$DEMO/data"
  echo "answers pre-signed (background lane): $(metric vigie_ocsp_presigned_total "ca=\"$CA\",lane=\"background\"")"
} | tee "$OUT/memory-disk.txt"

signatures() { metric vigie_ocsp_signing_seconds_count ""; }
printf 'round\tuniform req/s\thot req/s\tratio\tsignatures during uniform\n' >"$OUT/rounds.tsv"
for r in $(seq 1 "$ROUNDS"); do
  before=$(signatures)
  "$LOAD" run load-tests/scenarios/ocsp-population.toml "${common[@]}" -d "$D" --warmup 2s \
    --out "$OUT/uniform-$r" --label "uniform-$r" >"$OUT/uniform-$r.txt" 2>&1
  after=$(signatures)
  "$LOAD" run load-tests/scenarios/ocsp-population.toml "${common[@]}" -d "$D" --warmup 2s \
    --distribution hot:0.000001:1 --out "$OUT/hot-$r" --label "hot-$r" >"$OUT/hot-$r.txt" 2>&1
  u=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["totals"]["throughput"]))' "$OUT/uniform-$r/result.json")
  h=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["totals"]["throughput"]))' "$OUT/hot-$r/result.json")
  printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$u" "$h" "$(echo "scale=3; $u / $h" | bc)" \
    "$(echo "$after - $before" | bc)" | tee -a "$OUT/rounds.tsv"
done
python3 - "$OUT/rounds.tsv" <<'EOF' | tee "$OUT/summary.txt"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
ratios = [float(r["ratio"]) for r in rows]
print(f"uniform / hot serial, per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
      f"median {statistics.median(ratios):.2f} (target >= 0.80)")
print("signatures on the request path during uniform runs: "
      + ", ".join(r["signatures during uniform"] for r in rows))
EOF
grep -E 'VmHWM' "/proc/$SERVER/status" >>"$OUT/memory-disk.txt"
