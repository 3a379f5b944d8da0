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

# SKIP_BUILD=1: use the binaries already in the target directory.
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet -p vigie --bin vigie -p vigie-load --bin vigie-load
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

# vigie-load reads DIR/vigie.toml for the CAs' policies. One built before [pkcs11] existed
# (SKIP_BUILD with an older binary) reads a copy without that table.
LOADDIR_HSM=$WORK/hsm
if [ -n "${SKIP_BUILD:-}" ]; then
  LOADDIR_HSM=$WORK/hsm-view
  mkdir -p "$LOADDIR_HSM"
  ln -s "$WORK/hsm/pki" "$LOADDIR_HSM/pki"
  cp "$WORK/hsm/admin-token" "$LOADDIR_HSM/"
  grep -v -E '^(\[pkcs11\]|module = |pin_file = )' "$WORK/hsm/vigie.toml" >"$LOADDIR_HSM/vigie.toml"
fi

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
    run "nonce-$cas-hsm-$round" "$LOADDIR_HSM" http://127.0.0.1:18580 --nonce --cas "$cas"
    run "nonce-$cas-pem-$round" "$WORK/pem" http://127.0.0.1:18590 --nonce --cas "$cas"
  done
done
run cached-hsm "$LOADDIR_HSM" http://127.0.0.1:18580
run cached-pem "$WORK/pem" http://127.0.0.1:18590

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
