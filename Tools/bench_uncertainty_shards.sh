#!/bin/bash
# Runs `dmilo bench uncertainty` as parallel shards under `nice -n 10` (one thread each), every shard appending to
# its own record file in DIR, then prints the merged table. Re-runnable: each shard skips the jobs its file holds.
#   A: K-chain DAPS on held-out images (Tests/Data/fashion-mnist-test, test 100+)
#   B: K-chain DAPS on the tuning split (CALIB, test 0–99: Tools/export_test_images.py --first 0 --count 100) for
#      the σ scale
#   C: DAPS K=1 and DPS on the held-out images; D: DAPS K=1 at the K-chain run's per-chain settings (wall ratio)
#
#   Tools/bench_uncertainty_shards.sh DIR CALIB
#   env: DMILO (default .build/release/dmilo), MODEL (Models/fashion-mnist-32), COUNT (20), CALIB_COUNT (100)
set -u
DIR=${1:?usage: $0 DIR CALIB}
CALIB=${2:?usage: $0 DIR CALIB}
DMILO=${DMILO:-.build/release/dmilo} MODEL=${MODEL:-Models/fashion-mnist-32}
COUNT=${COUNT:-20} CALIB_COUNT=${CALIB_COUNT:-100}
mkdir -p "$DIR"
run() { OPENBLAS_NUM_THREADS=1 nice -n 10 "$DMILO" bench uncertainty --model "$MODEL" --threads 1 "$@"; }
run --count "$COUNT" --runs daps-k --records "$DIR/a.jsonl" > "$DIR/a.log" 2>&1 &
run --images "$CALIB" --count "$CALIB_COUNT" --runs daps-k --records "$DIR/b.jsonl" > "$DIR/b.log" 2>&1 &
run --count "$COUNT" --runs daps-1,dps --records "$DIR/c.jsonl" > "$DIR/c.log" 2>&1 &
run --count "$COUNT" --runs daps-1-matched --records "$DIR/d.jsonl" > "$DIR/d.log" 2>&1 &
wait
"$DMILO" bench uncertainty --merge "$DIR"/*.jsonl
