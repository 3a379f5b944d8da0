#!/usr/bin/env python3
"""A large population without issuing certificates: an OpenSSL `index.txt` for `vigie import`
and the matching `population.jsonl` lines for vigie-load.

`vigie-load seed` issues real certificates and registers them through the ingest API, which is
what a CA does, but the CA's signature makes it slow (about 800 certificates/s on two cores):
10^6 would take twenty minutes. OCSP only needs the registered serials and statuses, which
`vigie import` loads from an `index.txt` at ~50 000 lines/s. Use this for population sizes
that are about the responder, not about the ingest API.

    load-tests/scripts/index-population.py --ca aci-el-org --count 1000000 \
        --index /tmp/p/org.index --population /tmp/p/population.jsonl
    vigie import --config /tmp/p/vigie.toml --ca aci-el-org /tmp/p/org.index

Serials are 16 random octets (top bit clear), from a seeded generator: the same arguments
give the same files. `--revoked` of them are revoked (keyCompromise, an hour ago). The
population file is appended to, so several CAs can share one.
"""
import argparse
import json
import random
import time

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--ca", required=True, help="CA id, as in the configuration")
p.add_argument("--count", type=int, required=True)
p.add_argument("--revoked", type=float, default=0.1, help="fraction revoked (default 0.1)")
p.add_argument("--seed", type=int, default=16)
p.add_argument("--index", required=True, help="index.txt to write")
p.add_argument("--population", required=True, help="population.jsonl to append to")
a = p.parse_args()

rng = random.Random(f"{a.ca}-{a.seed}")
expiry = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + 3 * 365 * 86400))
revoked_at = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() - 3600))
with open(a.index, "w") as index, open(a.population, "a") as population:
    for i in range(a.count):
        serial = "%032x" % (rng.getrandbits(127) | (1 << 120))
        cn = f"/C=FR/O=ASIP-SANTE/CN=POPULATION {a.ca} {i}"
        if rng.random() < a.revoked:
            index.write(f"R\t{expiry}\t{revoked_at},keyCompromise\t{serial.upper()}\tunknown\t{cn}\n")
            line = {"ca": a.ca, "serial": serial, "status": "revoked", "reason": "keyCompromise"}
        else:
            index.write(f"V\t{expiry}\t\t{serial.upper()}\tunknown\t{cn}\n")
            line = {"ca": a.ca, "serial": serial, "status": "good"}
        population.write(json.dumps(line, separators=(",", ":")) + "\n")
