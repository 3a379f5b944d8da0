#!/usr/bin/env bash
# vigie's complete CRL build against `openssl ca -gencrl`, on the same entries, in one run.
#
#   benches/crl_vs_openssl.sh [ENTRIES] [WORKDIR]      (default 1000000 entries, a temp dir)
#
# 1. an RSA-4096 CA (as IGC-Santé's) is made with the openssl CLI;
# 2. examples/crl_bench_setup registers ENTRIES revoked certificates in a vigie store (through
#    the ingest rules, compacted) and writes the same revocations as an OpenSSL CA database;
# 3. `vigie crl build` (read the store, encode, sign, store) and `openssl ca -gencrl` run under
#    /usr/bin/time -v, one after the other; wall time and peak RSS are compared;
# 4. both CRLs are verified (`openssl crl -CAfile`) and their revokedCertificates compared.
#
# Needs /usr/bin/time (Debian: apt-get install time) and ~2 GB of disk for 10^6 entries.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

cargo build --release --quiet --bin vigie --example crl_bench_setup
TARGET=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
VIGIE=$TARGET/release/vigie
SETUP=$TARGET/release/examples/crl_bench_setup

rm -rf "$WORK/data" "$WORK"/index.txt* "$WORK"/crlnumber* "$WORK"/*.crl "$WORK"/*.der
if [ ! -f "$WORK/ca.key" ]; then
  openssl genrsa -out "$WORK/ca.key" 4096 2>/dev/null
  openssl req -x509 -new -key "$WORK/ca.key" -out "$WORK/ca.pem" -days 3650 \
    -subj "/C=FR/O=ASIP-SANTE/OU=0002 187512751/OU=IGC-SANTE TEST/CN=TEST AC BENCH CRL" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
fi
"$SETUP" "$WORK" "$N"

seconds() { # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:10.61" -> 10.61
  awk -F': ' '/Elapsed \(wall clock\)/ {
    n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$1"
}
rss_kb() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }

echo "== vigie crl build ($N entries)"
/usr/bin/time -v "$VIGIE" crl build --config "$WORK/vigie.toml" --ca bench --out "$WORK/vigie.der" \
  2> "$WORK/vigie.time" | tee "$WORK/vigie.out"
echo "== openssl ca -gencrl ($N entries)"
/usr/bin/time -v openssl ca -gencrl -config "$WORK/openssl.cnf" -out "$WORK/openssl.crl" \
  2> "$WORK/openssl.time"
openssl crl -in "$WORK/openssl.crl" -outform DER -out "$WORK/openssl.der"

echo "== checks"
openssl crl -inform DER -in "$WORK/vigie.der" -CAfile "$WORK/ca.pem" -noout 2>&1 | sed 's/^/vigie CRL: /'
openssl crl -inform DER -in "$WORK/openssl.der" -CAfile "$WORK/ca.pem" -noout 2>&1 | sed 's/^/openssl CRL: /'
for t in vigie openssl; do
  openssl crl -inform DER -in "$WORK/$t.der" -noout -text |
    sed -n '/^Revoked Certificates:/,/^    Signature Algorithm/p' > "$WORK/$t.entries"
done
if cmp -s "$WORK/vigie.entries" "$WORK/openssl.entries"; then
  echo "revokedCertificates: identical ($(grep -c 'Serial Number' "$WORK/vigie.entries") entries)"
else
  echo "revokedCertificates: DIFFERENT"; diff "$WORK/vigie.entries" "$WORK/openssl.entries" | head -20
fi

vs=$(seconds "$WORK/vigie.time"); os=$(seconds "$WORK/openssl.time")
vr=$(rss_kb "$WORK/vigie.time"); orss=$(rss_kb "$WORK/openssl.time")
vb=$(stat -c %s "$WORK/vigie.der"); ob=$(stat -c %s "$WORK/openssl.der")
echo
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
printf '%-22s %10s %14s %14s %12s\n' "" "wall (s)" "peak RSS (MiB)" "CRL (MiB)" "RSS / CRL"
printf '%-22s %10.2f %14.1f %14.1f %12.2f\n' "vigie crl build" "$vs" "$(echo "$vr/1024" | bc -l)" \
  "$(echo "$vb/1048576" | bc -l)" "$(echo "$vr*1024/$vb" | bc -l)"
printf '%-22s %10.2f %14.1f %14.1f %12.2f\n' "openssl ca -gencrl" "$os" "$(echo "$orss/1024" | bc -l)" \
  "$(echo "$ob/1048576" | bc -l)" "$(echo "$orss*1024/$ob" | bc -l)"
printf 'openssl / vigie wall time: %.1fx\n' "$(echo "$os/$vs" | bc -l)"
echo "workdir: $WORK"
