#!/usr/bin/env bash
# RUSTC_WRAPPER for `fuzz/build.sh`: adds libFuzzer's coverage instrumentation (the flags
# `cargo fuzz build -s none -a` puts in RUSTFLAGS) to the crates that hold the parsers under
# test — vigie itself, the fuzz targets and the DER/X.509 crates they decode with — and to no
# other crate, so a build can reuse every other dependency from an ordinary release build
# (RocksDB's C++ above all) instead of compiling ~400 crates again.
rustc=$1
shift
crate=""
prev=""
for a in "$@"; do
  if [ "$prev" = "--crate-name" ]; then crate=$a; break; fi
  prev=$a
done
case " ${VIGIE_SANCOV_CRATES:-} " in
  *" $crate "*)
    exec "$rustc" "$@" \
      -Cpasses=sancov-module \
      -Cllvm-args=-sanitizer-coverage-level=4 \
      -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
      -Cllvm-args=-sanitizer-coverage-pc-table \
      -Cllvm-args=-sanitizer-coverage-trace-compares \
      -Cllvm-args=-sanitizer-coverage-stack-depth \
      -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
      --cfg fuzzing -Cdebug-assertions -Coverflow-checks
    ;;
  *) exec "$rustc" "$@" ;;
esac
