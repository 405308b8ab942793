#!/usr/bin/env bash
# Soak + kill test of the spool daemon without a model: N jobs (every 20th a job whose worker aborts, every 20th+1
# a hostile manifest) through `dmilod-test --jobs 2`, with K `kill -9`s of the daemon at random moments, then a
# final --once run. Prints the daemon's RSS and open descriptors at start and end, and fails if any job is lost or
# duplicated. Usage: Tools/soak_dmilod.sh [BIN_DIR] [N] [K]   (BIN_DIR: folder holding dmilod-test, e.g. .build/debug)
set -euo pipefail
BIN=${1:-.build/debug}; N=${2:-1000}; K=${3:-20}
S=$(mktemp -d /tmp/dmilod-soak.XXXXXX)
mkdir -p "$S/incoming" "$S/tmp" "$S/calibration"
printf '{"rescan_seconds": 0.5, "missing_file_grace_seconds": 1, "settle_seconds": 0.5}' > "$S/cfg.json"
npy() { python3 -c 'import sys
h="{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2, 2), }"
h+=" "*((64-(10+len(h)+1)%64)%64)+"\n"
sys.stdout.buffer.write(b"\x93NUMPY\x01\x00"+len(h).to_bytes(2,"little")+h.encode()+bytes(16))'; }
npy > "$S/tmp/template.npy"
for i in $(seq -f '%05g' 1 "$N"); do
  name="j$i"; [ $((10#$i % 20)) -eq 0 ] && name="abort$i"
  cp "$S/tmp/template.npy" "$S/tmp/$name.npy" && mv "$S/tmp/$name.npy" "$S/incoming/$name.npy"
  if [ $((10#$i % 20)) -eq 1 ]; then body='{"version": 1, "measurement": "'$name'.npy", "operator": {"type": "denoise"}, "solver": {"steps": -3}}'
  else body='{"version": 1, "measurement": "'$name'.npy", "operator": {"type": "denoise"}}'; fi
  printf '%s' "$body" > "$S/tmp/$name.json" && mv "$S/tmp/$name.json" "$S/incoming/$name.json"
done
rss() { awk '/VmRSS/ {print $2 " kB"}' /proc/$1/status; }
fds() { ls /proc/$1/fd | wc -l; }
start=$(date +%s)
for k in $(seq 1 "$K"); do
  "$BIN/dmilod-test" --spool "$S" --config "$S/cfg.json" --jobs 2 --test-runner abort:5 2>>"$S/log" & pid=$!
  sleep 0.3; [ "$k" = 1 ] && echo "daemon after start: RSS $(rss $pid), fds $(fds $pid)"
  sleep "0.$((RANDOM % 9 + 1))"; kill -9 $pid; wait $pid 2>/dev/null || true
done
"$BIN/dmilod-test" --spool "$S" --config "$S/cfg.json" --jobs 2 --test-runner abort:5 2>>"$S/log" & pid=$!
while [ -n "$(ls "$S/incoming" | grep json || true)" ] || [ -n "$(ls "$S/work" 2>/dev/null)" ]; do sleep 1; done
echo "daemon after the soak: RSS $(rss $pid), fds $(fds $pid)"
kill -TERM $pid; wait $pid || true
done_n=$(ls "$S/done" | grep -vc '^\.' || true); failed_n=$(ls "$S/failed" | grep -vc '^\.' || true)
dups=$(ls "$S/done" "$S/failed" | grep -cE '\.[0-9]+$' || true); tmps=$(ls -a "$S/done" "$S/failed" | grep -c '^\.tmp-' || true)
crashed=$(grep -l job.crashed "$S"/failed/*/error.json 2>/dev/null | wc -l)
echo "error codes:"; cat "$S"/failed/*/error.json | grep '"error"' | sort | uniq -c
echo "jobs $N, kills $K, $(( $(date +%s) - start )) s: done $done_n, failed $failed_n (job.crashed $crashed), duplicates $dups, temp folders $tmps"
[ $((done_n + failed_n)) -eq "$N" ] && [ "$dups" -eq 0 ] && [ "$tmps" -eq 0 ] || { echo "FAIL: spool at $S"; exit 1; }
[ -n "${KEEP:-}" ] && echo "spool kept at $S" || rm -rf "$S"
