#!/usr/bin/env bash
# `make demo`: a demo spool with sample jobs of several operators (made by `dmilo simulate` from held-out Fashion-MNIST
# test images), drained by `dmilod --once` on the bundled model, then a table of the results.
set -euo pipefail
BIN=${BIN:?set BIN to the release bin folder}
MODEL=${MODEL:-Models/fashion-mnist-32/model-q8_0.gguf}
SPOOL=${SPOOL:-demo-spool}
IMAGES=Tests/Data/fashion-mnist-test

rm -rf "$SPOOL"
mkdir -p "$SPOOL"/{incoming,work,done,failed,tmp,calibration}
# name | test image | operator | solver
jobs=(
  "sr4-x|test-00101.png|{\"type\":\"super_resolution\",\"factor\":4}|{\"method\":\"dmilo-pgd\"}"
  "sr2-box|test-00102.png|{\"type\":\"super_resolution\",\"factor\":2,\"kernel\":\"box\"}|{\"method\":\"dmilo-pgd\"}"
  "inpaint70|test-00103.png|{\"type\":\"inpainting\",\"missing_fraction\":0.7,\"mask_seed\":7}|{\"method\":\"dmilo-pgd\"}"
  "inpaint-box|test-00104.png|{\"type\":\"inpainting\",\"box\":[8,10,16,10]}|{\"method\":\"dmilo\"}"
  "gblur|test-00105.png|{\"type\":\"gaussian_blur\",\"size\":9,\"sigma\":1.5}|{\"method\":\"dmilo-pgd\"}"
  "cs25|test-00106.png|{\"type\":\"compressed_sensing\",\"ratio\":0.25,\"matrix_seed\":3}|{\"method\":\"dmilo-pgd\"}"
  "hdr|test-00107.png|{\"type\":\"hdr\",\"gain\":2.5}|{\"method\":\"dmilo-pgd\"}"
  "sr4-baseline|test-00101.png|{\"type\":\"super_resolution\",\"factor\":4}|{\"method\":\"baseline\"}"
)
echo "== simulating ${#jobs[@]} measurements into $SPOOL/tmp, then dropping them into $SPOOL/incoming"
for j in "${jobs[@]}"; do
  IFS='|' read -r name img op solver <<<"$j"
  "$BIN/dmilo" simulate --image "$IMAGES/$img" --operator "$op" --solver "$solver" --noise-sigma 0.01 --seed 1 \
      --out "$SPOOL/tmp/$name.json" >/dev/null
done
# data files first, manifests last (the spool protocol)
for f in "$SPOOL"/tmp/*; do case "$f" in *.json) ;; *) mv "$f" "$SPOOL/incoming/" ;; esac; done
mv "$SPOOL"/tmp/*.json "$SPOOL/incoming/"

echo "== dmilod --once (model $MODEL, max_budget ${MAX_BUDGET:-600} UNet evaluations per job)"
cat > "$SPOOL/dmilod.json" <<JSON
{"spool": "$SPOOL", "model": "$MODEL", "max_budget": ${MAX_BUDGET:-600}, "log_level": "notice"}
JSON
start=$(date +%s)
# --once exits 1 when a job failed; the table and the failed-job count below still come, and the last line fails.
"$BIN/dmilod" --config "$SPOOL/dmilod.json" --once || echo "== dmilod --once: some jobs failed"
echo "== drained in $(( $(date +%s) - start )) s"

field() { grep -m1 "\"$2\"" "$1" | sed -e 's/.*: *//' -e 's/[",]//g'; }
printf '\n%-14s %-18s %-10s %7s %6s %8s %7s\n' job operator method PSNR SSIM seconds evals
for m in "$SPOOL"/done/*/metrics.json; do
  printf '%-14s %-18s %-10s %7.2f %6.3f %8.1f %7s\n' "$(field "$m" job)" "$(field "$m" operator)" "$(field "$m" method)" \
    "$(field "$m" psnr)" "$(field "$m" ssim)" "$(field "$m" wall_seconds)" "$(field "$m" unet_evaluations)"
done
failed=$(ls "$SPOOL/failed" | wc -l)
echo
echo "montages:"; ls "$SPOOL"/done/*/montage.png
echo "failed jobs: $failed"
[ "$failed" -eq 0 ]
