#!/usr/bin/env bash
# Builds the six fuzz targets with libFuzzer's coverage instrumentation, reusing an ordinary
# release build of vigie for everything that is not under test:
#
#   CARGO_TARGET_DIR=/path/to/a/copy/of/target fuzz/build.sh     → $CARGO_TARGET_DIR/release/<target>
#
# `cargo +nightly fuzz build` instruments all ~400 crates of the dependency tree (RocksDB's
# bindings, actix, tokio…) and so compiles them all again: over an hour on a busy 2-core machine.
# Here a RUSTC_WRAPPER (`rustc-sancov.sh`) instruments only the crates that hold the parsers —
# vigie, the targets, and const-oid/der/spki/x509-cert/x509-ocsp — with the flags cargo-fuzz
# uses (`-s none -a`: coverage, comparison tracing, debug assertions and overflow checks, no
# sanitizer: vigie is `#![forbid(unsafe_code)]`), with the stable toolchain; everything else is
# taken as compiled. Give it a target directory of its own (a copy of a release one): the
# instrumented rlibs must not be linked into the server by a later ordinary build.
#
# Then run a target (libFuzzer's options; new inputs go to fuzz/corpus-new/<target>, ignored by git):
#
#   mkdir -p fuzz/corpus-new/ocsp_request
#   $CARGO_TARGET_DIR/release/ocsp_request fuzz/corpus-new/ocsp_request fuzz/corpus/ocsp_request \
#       -runs=10000000 -max_len=4096 -timeout=10 -rss_limit_mb=2048
#
# `cargo +nightly fuzz run <target>` works as well where compiling the whole tree is affordable.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${CARGO_TARGET_DIR:?set CARGO_TARGET_DIR to a target directory of its own (a copy of a release build)}"
export CARGO_TARGET_DIR
export RUSTC_WRAPPER="$here/rustc-sancov.sh"
export VIGIE_SANCOV_CRATES="vigie vigie_fuzz ocsp_request get_path ingest_json certificate_upload index_line crl_entry_round_trip const_oid der spki x509_cert x509_ocsp"
# Registry crates already compiled without instrumentation: forget them once, so that they
# (and what depends on them) are compiled again through the wrapper.
marker="$CARGO_TARGET_DIR/.vigie-sancov"
if [ ! -e "$marker" ]; then
  for c in const-oid der spki x509-cert x509-ocsp; do
    rm -rf "$CARGO_TARGET_DIR"/release/.fingerprint/"$c"-*
  done
  touch "$marker"
fi
cargo +stable build --release --manifest-path "$here/Cargo.toml" --bins "$@"
