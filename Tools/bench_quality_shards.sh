#!/bin/bash
# Runs `dmilo bench quality` as shards of 5 images each (one process per task × method × shard, P at a time, one
# thread each) appending to one record file, then prints the merged table. Re-runnable: a shard whose 5 records
# are already in the file is skipped, so an interrupted run resumes.
#
#   Tools/bench_quality_shards.sh RECORDS.jsonl [METHODS [TASKS]]
#   env: DMILO (default .build/release/dmilo), MODEL (Models/fashion-mnist-32), COUNT (20), BUDGET (500), P (nproc),
#        IMAGES (a folder of test PNGs, as `bench quality --images`; default the bundled test images),
#        OVERRIDES (JSON for `bench quality --overrides`, e.g. '{"early_stop":false}' for fixed-budget runs)
set -u
REC=${1:?usage: $0 RECORDS.jsonl [METHODS [TASKS]]}
METHODS=${2:-dmilo-pgd,baseline,dmplug,dmilo,dps}
TASKS=${3:-sr2-box,sr2-bicubic,sr4,inpainting70,gaussian-blur,motion-blur,cs25,hdr,sr4-s05,inpainting70-s05}
export REC IMAGES=${IMAGES:-} OVERRIDES=${OVERRIDES:-} DMILO=${DMILO:-.build/release/dmilo} MODEL=${MODEL:-Models/fashion-mnist-32} BUDGET=${BUDGET:-500}
COUNT=${COUNT:-20}
shard() {   # task method first
  local done
  done=$(grep -c "\"image\":\($3\|$(($3 + 1))\|$(($3 + 2))\|$(($3 + 3))\|$(($3 + 4))\),\"method\":\"$2\",.*\"task\":\"$1\"" "$REC" 2>/dev/null)
  [ "${done:-0}" -ge 5 ] && return 0
  OPENBLAS_NUM_THREADS=1 "$DMILO" bench quality --model "$MODEL" ${IMAGES:+--images "$IMAGES"} --count 5 --first "$3" --tasks "$1" --methods "$2" \
    --threads 1 --budget "$BUDGET" ${OVERRIDES:+--overrides "$OVERRIDES"} --records "$REC" > /dev/null
}
export -f shard
# image-major: every method and task gets shard 0 before any gets shard 5, so a cut run still compares like with like
for f in $(seq 0 5 $((COUNT - 1))); do for t in ${TASKS//,/ }; do for m in ${METHODS//,/ }; do echo "$t $m $f"; done; done; done \
  | xargs -P "${P:-$(nproc)}" -L 1 bash -c 'shard "$0" "$1" "$2"'
"$DMILO" bench quality --merge "$REC"
