#!/usr/bin/env bash
# Live signing speed (issue 10, point 3): nonce OCSP answers per second through the real server,
# each one freshly signed and checked, against what `openssl speed` signs on all the machine's
# cores in the same minutes:
#
#   load-tests/signing-speed.sh [ROUNDS] [DURATION] [CONNECTIONS] [OUT]
#                                (default 3, 15s, 64, load-tests/results/<date>-signing)
#
# 1. `vigie demo --ca-bits 2048` on its own ports: aci-el-org answers with an ECDSA P-256
#    delegated signer, aci-el-pp with an RSA-2048 one (PEM keys; the demo lifts the per-client
#    signing ration, the load comes from one address); signing threads = cores (the default);
# 2. each round: `openssl speed -multi $(nproc) ecdsap256 rsa2048` (the reference, raw output
#    kept), then vigie-load POSTs requests with a 32-octet nonce for the P-256 CA, then for the
#    RSA CA (closed loop, CONNECTIONS connections). Only right answers count: an answer
#    without the nonce echoed, a tryLater or a bad signature (1 % verified) is not one;
# 3. per round, ratio = right answers/s ÷ openssl sign/s; summary.txt gives each round, the
#    median and the spread, with the commit and the load average.
# 4. on a machine shared with other work both sides get what the scheduler leaves them, and
#    the wall-clock ratio moves with it. So each round also runs `openssl speed` in one process
#    without -multi, whose rate is per second of the process's own CPU time (OpenSSL's default,
#    no -elapsed): the CPU one signature costs. Set against the CPU each answer cost the server
#    and the generator (vigie-load measures both from /proc), it gives the ratio the same code
#    would reach on cores of its own: "cpu ratio" = CPU per signature ÷ (server + generator CPU
#    per answer), and "server-only" = CPU per signature ÷ server CPU per answer (a generator on
#    another machine).
#
# Targets (issue 10): P-256 ≥ 0.70×, RSA-2048 ≥ 0.80×. The load generator runs on the same
# cores as the server and openssl: its CPU per request is in each vigie-load result.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
D=${2:-15s}
C=${3:-64}
OUT=${4:-load-tests/results/$(date -u +%Y-%m-%d)-signing}
SPEED_SECONDS=${SPEED_SECONDS:-3}
CORES=$(nproc)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# SKIP_BUILD=1: use the binaries already in the target directory; BIN_DIR=DIR: those in DIR
# (e.g. a build of another commit, to compare; say which in the result's README).
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

WORK=$(mktemp -d)
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

PUBLIC=127.0.0.1:18680
ADMIN=127.0.0.1:18681
"$VIGIE" demo --dir "$WORK/demo" --listen "$PUBLIC" --admin-listen "$ADMIN" --ca-bits 2048 \
  >"$WORK/demo.out" 2>"$WORK/demo.err" &
SERVER=$!
for _ in $(seq 1 600); do
  if curl -sf "http://$ADMIN/readyz" >/dev/null; then break; fi
  sleep 0.2
done
curl -sf "http://$ADMIN/readyz" >/dev/null || {
  echo "vigie demo did not become ready:" >&2
  cat "$WORK/demo.err" >&2
  exit 1
}
sleep 2 # the demo's pre-signing pass (14 certificates) is over long before

{
  if [ -n "${BIN_DIR:-}" ]; then
    echo "binaries from $BIN_DIR (built $(date -u -r "$VIGIE" +%FT%TZ)); tree at commit $(git rev-parse HEAD)"
  else
    echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (dirty)')"
  fi
  echo "date $(date -u +%FT%TZ); $CORES CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
  echo "$(openssl version)"
  echo "rounds $ROUNDS; vigie-load: POST, 32-octet nonce, closed loop, $C connections, $D (+2 s warm-up), 1 generator thread"
  echo "reference: openssl speed -multi $CORES -seconds $SPEED_SECONDS ecdsap256 rsa2048 (sign/s, all cores)"
} >"$OUT/summary.txt"

run() { # LABEL CA
  "$LOAD" ocsp --demo-dir "$WORK/demo" --url "http://$PUBLIC" --method post --nonce --cas "$2" \
    -c "$C" -d "$D" --warmup 2s --samples --out "$OUT/$1" --label "$1" -q \
    --server-pid "$SERVER" >"$OUT/$1.txt" 2>&1 || true
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round: loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/summary.txt"
  openssl speed -multi "$CORES" -seconds "$SPEED_SECONDS" ecdsap256 rsa2048 \
    >"$OUT/openssl-speed-$round.txt" 2>&1
  openssl speed -seconds "$SPEED_SECONDS" ecdsap256 rsa2048 >"$OUT/openssl-speed-cpu-$round.txt" 2>&1
  run "nonce-p256-$round" aci-el-org
  run "nonce-rsa2048-$round" aci-el-pp
done

python3 - "$OUT" "$ROUNDS" <<'PY' | tee -a "$OUT/summary.txt"
import json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])

def speed(path):
    """sign/s of the summary table openssl speed prints (all processes of -multi together)."""
    rsa = ec = None
    for line in open(path):
        m = re.match(r"\s*rsa 2048 bits\s+\S+s\s+\S+s\s+([\d.]+)", line)
        if m:
            rsa = float(m.group(1))
        m = re.match(r"\s*256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)", line)
        if m:
            ec = float(m.group(1))
    if rsa is None or ec is None:
        sys.exit(f"{path}: no rsa 2048 / nistp256 sign/s line")
    return {"rsa2048": rsa, "p256": ec}

def run(label):
    d = json.load(open(f"{out}/{label}/result.json"))
    t = d["totals"]
    right = t["ok"] / d["measured_seconds"]
    return right, t, d["server"], d["generator"]

ratios = {k: {"wall": [], "cpu": [], "server": []} for k in ("p256", "rsa2048")}
for r in range(1, rounds + 1):
    ref = speed(f"{out}/openssl-speed-{r}.txt")
    cpu = speed(f"{out}/openssl-speed-cpu-{r}.txt")
    for key in ("p256", "rsa2048"):
        right, t, srv, gen = run(f"nonce-{key}-{r}")
        sign_us = 1e6 / cpu[key]
        ratio = right / ref[key]
        ratios[key]["wall"].append(ratio)
        ratios[key]["cpu"].append(sign_us / (srv["cpu_us_per_request"] + gen["cpu_us_per_request"]))
        ratios[key]["server"].append(sign_us / srv["cpu_us_per_request"])
        print(f"round {r} {key}: {right:.0f} right answers/s (wrong {t['wrong']}, errors {t['errors']}, "
              f"timeouts {t['timeouts']}; p99 {t['latency_ms']['p99']} ms) / openssl -multi {ref[key]:.0f} sign/s "
              f"= {ratio:.3f}x; server {srv['cpu_percent']:.0f} % CPU, {srv['cpu_us_per_request']:.1f} us/answer; "
              f"generator {gen['cpu_percent']:.0f} % CPU, {gen['cpu_us_per_request']:.1f} us/answer; "
              f"openssl {sign_us:.1f} us CPU/signature => cpu ratio {ratios[key]['cpu'][-1]:.3f}x, "
              f"server-only {ratios[key]['server'][-1]:.3f}x")
for key, target in (("p256", 0.70), ("rsa2048", 0.80)):
    for basis, what in (("wall", "answers/s vs openssl -multi sign/s, same minutes"),
                        ("cpu", "CPU per signature / (server + generator CPU per answer)"),
                        ("server", "CPU per signature / server CPU per answer")):
        v = sorted(ratios[key][basis])
        print(f"{key} {basis}: median {statistics.median(v):.3f}x, spread {v[0]:.3f}-{v[-1]:.3f}x "
              f"over {len(v)} rounds ({what}; target >= {target:.2f}x)")
PY
