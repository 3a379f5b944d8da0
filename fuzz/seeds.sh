#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/<target>/ from real clients: OpenSSL
# (`openssl ocsp -reqout`), GnuTLS (`ocsptool --generate-request`, Debian package gnutls-bin),
# Java (the JDK's own PKIX revocation checker, its requests captured by a local listener) and curl
# (GET paths as curl puts them on the wire, captured the same way), plus ingest bodies, certificate
# uploads and index.txt lines made with the openssl CLI. Run from anywhere; needs openssl,
# ocsptool, curl, java/javac and python3. Seeds are committed: CI does not run this.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$here/corpus"
pki="$here/../tests/data/golden-pki"
work="$(mktemp -d)"
listener=""
trap 'if [ -n "$listener" ]; then kill "$listener" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
for t in ocsp_request get_path ingest_json certificate_upload index_line crl_entry_round_trip; do
    mkdir -p "$corpus/$t"
done

# --- An extra EC hierarchy beside the golden RSA one: a CA and a leaf with a 20-octet serial.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ec-ca.key" 2>/dev/null
openssl req -x509 -new -key "$work/ec-ca.key" -subj "/C=FR/O=ASIP-SANTE/OU=IGC-SANTE TEST/CN=TEST AC FUZZ EC" \
    -days 3650 -out "$work/ec-ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$work/leaf.key" 2>/dev/null
openssl req -new -key "$work/leaf.key" -subj "/C=FR/O=CENTRE HOSPITALIER DE TEST/OU=1750000001/CN=portail.ch-test.fr" \
    -out "$work/leaf.csr" 2>/dev/null
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ec-ca.pem" -CAkey "$work/ec-ca.key" \
    -set_serial 0x7f0102030405060708090a0b0c0d0e0f10111213 -days 1095 -out "$work/leaf.pem" 2>/dev/null
ca="$pki/ca.pem"
leaf="$pki/ocsp.pem"

# --- OCSP requests: OpenSSL.
o="$corpus/ocsp_request"
openssl ocsp -issuer "$ca" -cert "$leaf" -reqout "$o/openssl-sha1-nonce.der" >/dev/null
openssl ocsp -issuer "$ca" -cert "$leaf" -no_nonce -reqout "$o/openssl-sha1.der" >/dev/null
openssl ocsp -sha256 -issuer "$ca" -cert "$leaf" -reqout "$o/openssl-sha256-nonce.der" >/dev/null
openssl ocsp -sha384 -issuer "$ca" -cert "$leaf" -no_nonce -reqout "$o/openssl-sha384.der" >/dev/null
openssl ocsp -sha512 -issuer "$ca" -cert "$leaf" -no_nonce -reqout "$o/openssl-sha512.der" >/dev/null
openssl ocsp -issuer "$ca" -serial 0x0123456789 -serial 0x01 -cert "$leaf" -reqout "$o/openssl-three-certids.der" >/dev/null
openssl ocsp -issuer "$work/ec-ca.pem" -cert "$work/leaf.pem" -no_nonce -reqout "$o/openssl-ec-20-octet-serial.der" >/dev/null
openssl ocsp -issuer "$ca" -cert "$leaf" -signer "$leaf" -signkey "$pki/ocsp.key" -reqout "$o/openssl-signed.der" >/dev/null
# --- GnuTLS.
ocsptool --generate-request --load-issuer "$ca" --load-cert "$leaf" --outfile "$o/gnutls-nonce.der" >/dev/null
ocsptool --generate-request --no-nonce --load-issuer "$ca" --load-cert "$leaf" --outfile "$o/gnutls.der" >/dev/null
ocsptool --generate-request --load-issuer "$work/ec-ca.pem" --load-cert "$work/leaf.pem" --outfile "$o/gnutls-ec.der" >/dev/null

# --- A listener that records what clients send: request line (GET) or body (POST).
cat > "$work/listen.py" <<'PY'
import http.server, sys, os
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def answer(self):
        self.send_response(500); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        n = len(os.listdir(out))
        with open(os.path.join(out, f"get-{n:03}"), "wb") as f:
            f.write(self.path.encode())
        self.answer()
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        n = len(os.listdir(out))
        with open(os.path.join(out, f"post-{n:03}"), "wb") as f:
            f.write(body)
        self.answer()
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
mkdir -p "$work/seen"
coproc LISTEN { exec python3 "$work/listen.py" "$work/seen"; }
listener="$LISTEN_PID"
read -r port <&"${LISTEN[0]}"

# --- GET paths as curl sends them (RFC 6960 A.1: base64, URL-encoded or not).
for f in "$o"/openssl-sha1.der "$o"/openssl-sha256-nonce.der "$o"/gnutls-ec.der "$o"/openssl-three-certids.der; do
    b64="$(base64 -w0 "$f")"
    enc="$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$b64")"
    url64="$(printf %s "$b64" | tr '+/' '-_' | tr -d '=')"
    curl -s -o /dev/null --path-as-is "http://127.0.0.1:$port/ocsp/$b64" || true
    curl -s -o /dev/null "http://127.0.0.1:$port/ocsp/$enc" || true
    curl -s -o /dev/null "http://127.0.0.1:$port/ocsp/$url64" || true
    curl -s -o /dev/null "http://127.0.0.1:$port/$enc" || true
done
for f in "$work"/seen/get-*; do
    # What the handler decodes: the path after /ocsp/ (or /), as it arrived.
    p="$(cat "$f")"; p="${p#/ocsp/}"; p="${p#/}"
    printf %s "$p" > "$corpus/get_path/curl-$(basename "$f")"
done

# --- Java: the JDK's PKIX revocation checker asks the OCSP URL of a certificate's AIA.
cat > "$work/aia.cnf" <<CNF
[ext]
authorityInfoAccess = OCSP;URI:http://127.0.0.1:$port/ocsp
basicConstraints = CA:FALSE
CNF
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ec-ca.pem" -CAkey "$work/ec-ca.key" -set_serial 0x1234abcd \
    -days 1095 -extfile "$work/aia.cnf" -extensions ext -out "$work/leaf-aia.pem" 2>/dev/null
cat > "$work/Ask.java" <<'JAVA'
import java.io.FileInputStream;
import java.security.Security;
import java.security.cert.*;
import java.util.*;
public class Ask {
    public static void main(String[] a) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        X509Certificate ca = (X509Certificate) cf.generateCertificate(new FileInputStream(a[0]));
        X509Certificate leaf = (X509Certificate) cf.generateCertificate(new FileInputStream(a[1]));
        Security.setProperty("ocsp.enable", "true");
        CertPathValidator v = CertPathValidator.getInstance("PKIX");
        PKIXRevocationChecker rc = (PKIXRevocationChecker) v.getRevocationChecker();
        Set<PKIXRevocationChecker.Option> opts = EnumSet.of(PKIXRevocationChecker.Option.ONLY_END_ENTITY,
            PKIXRevocationChecker.Option.NO_FALLBACK);
        rc.setOptions(opts);
        PKIXParameters p = new PKIXParameters(Set.of(new TrustAnchor(ca, null)));
        p.addCertPathChecker(rc);
        try { v.validate(cf.generateCertPath(List.of(leaf)), p); } catch (Exception e) { }
    }
}
JAVA
javac -d "$work" "$work/Ask.java"
curl_requests="$(ls "$work"/seen | wc -l)"
java -Djdk.security.certpath.ocspNonce=false -cp "$work" Ask "$work/ec-ca.pem" "$work/leaf-aia.pem" || true
java -Djdk.security.certpath.ocspNonce=true -cp "$work" Ask "$work/ec-ca.pem" "$work/leaf-aia.pem" || true
for f in "$work"/seen/*; do
    n="$(basename "$f")"; n="${n#*-}"
    [ "$((10#$n))" -ge "$curl_requests" ] || continue
    case "$(basename "$f")" in
    post-*) cp "$f" "$o/java-$(basename "$f").der" ;;
    get-*)
        p="$(cat "$f")"
        printf %s "${p#/ocsp/}" > "$corpus/get_path/java-$(basename "$f")"
        python3 -c 'import sys,urllib.parse,base64;sys.stdout.buffer.write(base64.b64decode(urllib.parse.unquote(sys.argv[1])))' \
            "${p#/ocsp/}" > "$o/java-$(basename "$f").der" ;;
    esac
done

# --- Ingest bodies (first octet: even = application/json, odd = application/x-ndjson).
i="$corpus/ingest_json"
printf '\x00{"ca":"aci-el-org","serial":"0a1b2c","reason":"keyCompromise","revoked_at":"2026-01-02T03:04:05Z","invalidity_date":"2025-12-25T00:00:00Z"}' > "$i/object.json"
printf '\x00[{"ca":"aci-el-org","serial":"01","reason":"superseded"},{"ca":"aci-el-pp","serial":"7F00","reason":"certificateHold"}]' > "$i/array.json"
printf '\x01{"ca":"aci-el-org","serial":"02"}\n{"ca":"aci-el-org","serial":"03","reason":"cessationOfOperation"}\n' > "$i/batch.ndjson"
printf '\x00{"ca":"aci-el-org","serial":"00ff","reason":"removeFromCRL"}' > "$i/bad-reason.json"
printf '\x00{"ca":"x","serial":"zz","revoked_at":"2026-13-40T99:99:99+25:00"}' > "$i/bad-fields.json"

# --- Certificate uploads (first octet: 0 = PEM chain, 1 = DER, 2 = JSON).
c="$corpus/certificate_upload"
{ printf '\x00'; cat "$leaf" "$ca"; } > "$c/pem-chain"
{ printf '\x01'; openssl x509 -in "$work/leaf.pem" -outform DER; } > "$c/der"
{ printf '\x02{"certificates":["'; openssl x509 -in "$work/leaf.pem" -outform DER | base64 -w0; printf '","'; \
  awk '{printf "%s\\n", $0}' "$leaf"; printf '"]}'; } > "$c/json"

# --- index.txt lines, as `openssl ca` writes them.
mkdir -p "$work/ca/newcerts"
: > "$work/ca/index.txt"
echo 1000 > "$work/ca/serial"
cat > "$work/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
dir = $work/ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
certificate = $work/ec-ca.pem
private_key = $work/ec-ca.key
default_md = sha256
default_days = 365
policy = p
unique_subject = no
[p]
commonName = supplied
CNF
for n in 1 2 3 4; do
    openssl req -new -key "$work/leaf.key" -subj "/C=FR/O=TEST/CN=index $n" -out "$work/$n.csr" 2>/dev/null
    openssl ca -batch -config "$work/ca.cnf" -in "$work/$n.csr" -out "$work/$n.pem" 2>/dev/null
done
openssl ca -config "$work/ca.cnf" -revoke "$work/2.pem" -crl_reason keyCompromise 2>/dev/null
openssl ca -config "$work/ca.cnf" -revoke "$work/3.pem" -crl_hold holdInstructionReject 2>/dev/null
openssl ca -config "$work/ca.cnf" -revoke "$work/4.pem" -crl_compromise 20250101000000Z 2>/dev/null
n=0
while IFS= read -r line; do
    n=$((n + 1))
    printf '%s\n' "$line" > "$corpus/index_line/openssl-ca-$n"
done < "$work/ca/index.txt"

# --- CRL entries: the first octet picks the serial length (mod 21) and the time range.
e="$corpus/crl_entry_round_trip"
printf '\x10\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x00\x00\x69\x00\x00\x00\x00\x00\x68\x00\x00\x00\x01' > "$e/sixteen-octets-key-compromise"
printf '\x54\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xe0\x00\x00\x00\x00\x00\x10\x00\x00\x00\x06' > "$e/twenty-octets-high-bit-2049"
printf '\x41\x7f\x00\x00\xff\xff\xff\xff\x00\x01\x00\x00\x00\x00\x08' > "$e/remove-from-crl"
printf '\x95\x01\x00\x00\x00\x00\x00\x00\x7f\xff\xff\xff\xff\xff' > "$e/out-of-range-year"
echo "seeds written under $corpus"
