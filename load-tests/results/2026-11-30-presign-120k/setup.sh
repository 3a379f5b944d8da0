#!/bin/bash
# usage: setup.sh DIR ORG_COUNT PP_COUNT
set -e
D=$1; ORG=$2; PP=$3
V=/work/targets/presign/release/vigie
rm -rf $D; mkdir -p $D
$V demo --dir $D --ca-bits 2048 --no-serve --listen 127.0.0.1:18680 --admin-listen 127.0.0.1:18681 > $D/demo.log 2>&1
S=/work/wt16/load-tests/scripts/index-population.py
rm -f $D/population.jsonl
if [ "$ORG" -gt 0 ]; then python3 $S --ca aci-el-org --count $ORG --index $D/org.idx --population $D/population.jsonl; $V import --config $D/vigie.toml --ca aci-el-org $D/org.idx; fi
if [ "$PP" -gt 0 ]; then python3 $S --ca aci-el-pp --count $PP --index $D/pp.idx --population $D/population.jsonl; $V import --config $D/vigie.toml --ca aci-el-pp $D/pp.idx; fi
du -sh $D/data
