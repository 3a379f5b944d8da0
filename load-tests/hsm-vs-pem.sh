#!/usr/bin/env bash
# OCSP signing through SoftHSM2 (PKCS#11) against signing with PEM key files, in one run, on the
# same machine and the same key types:
#
#   load-tests/hsm-vs-pem.sh [DURATION] [CONNECTIONS] [OUT]     (default 15s, 16, a dated dir)
#
# 1. two demo PKIs are made with 2048-bit CA keys: `vigie demo --hsm` (issuing CA and OCSP
#    signer keys generated inside a SoftHSM2 token of the demo directory) and `vigie demo`
#    (the same kinds of keys in PEM files); each is served on its own ports;
# 2. vigie-load sends nonce requests (every answer freshly signed) for the RSA-2048 signer
#    (aci-el-pp) and the ECDSA P-256 signer (aci-el-org) to each server, one after the other;
# 3. then cached answers (no nonce) to each: they must not depend on where the key is.
#
# Result files (vigie-load's result.json + report.html per run, and summary.txt with the
# commit) go to OUT, by default load-tests/results/<date>-hsm-vs-pem/.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-15s}
C=${2:-16}
OUT=${3:-load-tests/results/$(date -u +%Y-%m-%d)-hsm-vs-pem}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

cargo build --release --quiet --bin vigie -p vigie --bin vigie-load -p vigie-load
TARGET=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
VIGIE=$TARGET/release/vigie
LOAD=$TARGET/release/vigie-load

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

start() { # DIR PUBLIC ADMIN [--hsm]
  "$VIGIE" demo --dir "$1" --listen "$2" --admin-listen "$3" --ca-bits 2048 ${4:-} \
    >"$1.out" 2>"$1.err" &
  PIDS+=($!)
  for _ in $(seq 1 600); do
    if curl -sf "http://$3/readyz" >/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "vigie demo in $1 did not become ready:" >&2
  cat "$1.err" >&2
  exit 1
}

start "$WORK/hsm" 127.0.0.1:18580 127.0.0.1:18581 --hsm
start "$WORK/pem" 127.0.0.1:18590 127.0.0.1:18591

run() { # LABEL DEMO_DIR URL ARGS...
  local label=$1 dir=$2 url=$3
  shift 3
  "$LOAD" ocsp --demo-dir "$dir" --url "$url" --method post -c "$C" -d "$D" --warmup 2s \
    --samples --out "$OUT/$label" --label "$label" -q "$@" | tee "$OUT/$label.txt"
}

{
  echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo ' (dirty)')"
  echo "date $(date -u +%FT%TZ); $(nproc) CPUs; duration $D, $C connections"
  softhsm2-util --version | sed 's/^/softhsm2 /'
} >"$OUT/summary.txt"

for round in 1 2; do
  for cas in aci-el-pp aci-el-org; do
    run "nonce-$cas-hsm-$round" "$WORK/hsm" http://127.0.0.1:18580 --nonce --cas "$cas"
    run "nonce-$cas-pem-$round" "$WORK/pem" http://127.0.0.1:18590 --nonce --cas "$cas"
  done
done
for side in hsm pem; do
  port=18580
  [ "$side" = pem ] && port=18590
  run "cached-$side" "$WORK/$side" "http://127.0.0.1:$port"
done

rps() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["totals"]; assert t["wrong"] == 0, sys.argv[1]; print(round(t["throughput"], 1))' "$OUT/$1/result.json"; }
{
  echo
  echo "requests/s (each answer checked; nonce answers freshly signed)"
  for round in 1 2; do
    for cas in aci-el-pp aci-el-org; do
      h=$(rps "nonce-$cas-hsm-$round"); p=$(rps "nonce-$cas-pem-$round")
      echo "round $round nonce $cas: hsm $h pem $p ratio $(python3 -c "print(round($h/$p, 3))")"
    done
  done
  h=$(rps cached-hsm); p=$(rps cached-pem)
  echo "cached (no nonce): hsm $h pem $p ratio $(python3 -c "print(round($h/$p, 3))")"
} | tee -a "$OUT/summary.txt"
