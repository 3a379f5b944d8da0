#!/bin/sh
# Revocation under a nonce flood (issue 10): the flood's rate against the machine's RSA-2048
# signing capacity measured in the same minutes (`openssl speed -multi 2`, before and after).
#
#   load-tests/flood.sh OUT     # OUT: a new results directory
#
# Runs `cargo test --release --test flood` (tests/flood.rs: 24 keep-alive clients sending nonce
# requests for one registered certificate while 20 certificates are revoked through the ingest
# API; each revocation must be answered `revoked` by the next request without a nonce) and
# writes OUT/result.txt (the test's report), OUT/openssl-speed-{before,after}.txt (raw) and
# OUT/summary.txt (flood rate / openssl's signatures per second on both cores).
set -eu
OUT=${1:?usage: load-tests/flood.sh OUT}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT"
cargo test --release --test flood --no-run --quiet 2>/dev/null
{
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- src tests || echo ' (dirty)')"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine: $(nproc) cores, $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "openssl: $(openssl version)"
  echo "command: load-tests/flood.sh $OUT"
} >"$OUT/environment.txt"
speed() { openssl speed -multi 2 -seconds 3 rsa2048 2>&1; }
speed >"$OUT/openssl-speed-before.txt"
VIGIE_FLOOD_RESULT="$OUT/result.txt" cargo test --release --test flood --quiet -- --nocapture \
  >"$OUT/test-output.txt" 2>&1
speed >"$OUT/openssl-speed-after.txt"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/environment.txt"
# The aggregate line of `openssl speed -multi`: "rsa 2048 bits <s/sign> <s/verify> <sign/s> <verify/s>".
sign_rate() { awk '/^rsa 2048 bits/ { v = $6 } END { print v }' "$1"; }
before=$(sign_rate "$OUT/openssl-speed-before.txt")
after=$(sign_rate "$OUT/openssl-speed-after.txt")
flood=$(sed -n 's/^flood: \([0-9]*\) nonce req\/s.*/\1/p' "$OUT/result.txt")
python3 - "$before" "$after" "$flood" <<'PY' | tee "$OUT/summary.txt"
import sys
before, after, flood = (float(x) for x in sys.argv[1:])
capacity = max(before, after)
print(f"openssl speed -multi 2 rsa2048: {before:.0f} sign/s before, {after:.0f} after")
print(f"flood: {flood:.0f} nonce requests/s = {flood / capacity:.1f}x the machine's signing capacity "
      f"(the higher of the two; target >= 5x)")
PY
grep -E "^acknowledgement|^flood answers" "$OUT/result.txt" | tee -a "$OUT/summary.txt"
