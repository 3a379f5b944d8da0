#!/usr/bin/env bash
# Runs fuzz targets built by `fuzz/build.sh`, one after the other, one process each, at the
# lowest CPU priority, and keeps libFuzzer's final statistics:
#
#   CARGO_TARGET_DIR=... fuzz/run.sh RUNS LOGDIR [TARGET...]     (default: all six targets)
#
# MAX_TIME=SECONDS bounds each run in time as well (libFuzzer's -max_total_time); the runs a
# target made are in the `stat::number_of_executed_units` line of LOGDIR/<target>.full.log.
#
# New inputs go to fuzz/corpus-new/<target> (git-ignored; minimise and copy to fuzz/corpus/ the
# few worth keeping); a crash, timeout or out-of-memory input is written to
# fuzz/artifacts/<target>/ and stops that target's run (its log says which).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${CARGO_TARGET_DIR:?set CARGO_TARGET_DIR as for fuzz/build.sh}"
runs=${1:?RUNS}
logs=${2:?LOGDIR}
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ocsp_request get_path ingest_json certificate_upload index_line crl_entry_round_trip)
mkdir -p "$logs"
for t in "${targets[@]}"; do
  mkdir -p "$here/corpus-new/$t" "$here/artifacts/$t"
  nice -n 19 "$CARGO_TARGET_DIR/release/$t" "$here/corpus-new/$t" "$here/corpus/$t" \
    -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -max_total_time="${MAX_TIME:-0}" -artifact_prefix="$here/artifacts/$t/" >"$logs/$t.full.log" 2>&1
  echo "$t: exit $?" >>"$logs/exit-status.txt"
done
