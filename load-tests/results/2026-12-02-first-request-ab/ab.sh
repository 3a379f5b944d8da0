#!/bin/bash
# usage: ab.sh LABEL [env assignments...]  — restarts the server on the kept store and runs uniform then hot
set -u
L=$1; shift
B=/var/cache/vigie-ci/target/release; V=${V:-$B/vigie}; D=/var/tmp/pop1/demo
pkill -f "serve --config"; sleep 2
cat $D/data/*.sst > /dev/null
env "$@" $V serve --config $D/vigie.toml > /tmp/srv-$L.log 2>&1 &
for i in $(seq 100); do curl -sf http://127.0.0.1:18681/readyz >/dev/null && break; sleep 0.2; done
PID=$(pgrep -f "serve --config")
common="--demo-dir $D --url http://127.0.0.1:18680 --admin http://127.0.0.1:18681 --cas aci-el-org -q"
for r in 1 2; do
$B/vigie-load run load-tests/scenarios/ocsp-population.toml $common -d 15s --warmup 2s --seed $((r+10)) --out /tmp/ab-$L-u$r > /tmp/ab-$L-u$r.txt 2>&1
$B/vigie-load run load-tests/scenarios/ocsp-population.toml $common -d 15s --warmup 2s --distribution hot:0.000001:1 --out /tmp/ab-$L-h$r > /tmp/ab-$L-h$r.txt 2>&1
u=$(grep "^all" /tmp/ab-$L-u$r.txt | awk '{print $3}'); h=$(grep "^all" /tmp/ab-$L-h$r.txt | awk '{print $3}')
echo "$L round $r: uniform $u hot $h ratio $(echo "scale=3; $u/$h" | bc) | $(grep server /tmp/ab-$L-u$r.txt | cut -d: -f2) | $(grep server /tmp/ab-$L-h$r.txt | cut -d: -f2)"
done
grep -E "VmHWM|VmRSS|RssAnon|RssFile" /proc/$PID/status | tr '\n' ' '; echo
