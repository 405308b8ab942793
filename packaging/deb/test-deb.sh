#!/usr/bin/env bash
# test-deb.sh dist/dmilo_<version>_<arch>.deb — run by `make package-test` (part of `make test`).
# 1. extracts the package into an empty folder (dpkg-deb -x) and, in a private mount namespace where the Swift
#    toolchain's folder is hidden, runs `--version` of the three binaries and `dmilod --once` on a one-job spool
#    with the packaged model and config (paths re-rooted to the folder);
# 2. lintian (every tag it may print is justified in packaging/deb/README.md, anything else fails);
# 3. systemd-analyze verify and security --offline on the packaged unit (exposure printed, at most 0.6).
set -euo pipefail
deb=$(realpath "$1")
repo=$(cd "$(dirname "$0")/../.." && pwd)
toolchain=${DMILO_TOOLCHAIN_DIR:-$(dirname "$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")")}
case $toolchain in /|/usr|/usr/local) echo "package-test: the toolchain lives in $toolchain, which cannot be hidden;" \
  "set DMILO_TOOLCHAIN_DIR" >&2; exit 1 ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

echo "== package: $(basename "$deb")"
dpkg-deb -f "$deb" Package Version Architecture Depends
dpkg-deb -x "$deb" "$root"
for f in usr/bin/dmilo usr/bin/dmilod usr/bin/dmilo-quantize lib/systemd/system/dmilod.service \
         usr/lib/sysusers.d/dmilo.conf usr/lib/tmpfiles.d/dmilo.conf etc/dmilo/dmilod.json usr/share/dmilo/model.gguf \
         usr/share/dmilo/manifest.schema.json usr/share/dmilo/uncertainty-calibration.json usr/share/man/man1/dmilo.1.gz usr/share/man/man8/dmilod.8.gz \
         usr/share/man/man1/dmilo-quantize.1.gz usr/share/bash-completion/completions/dmilo \
         usr/share/zsh/vendor-completions/_dmilod usr/share/fish/vendor_completions.d/dmilo-quantize.fish \
         usr/share/doc/dmilo/copyright; do
  [ -e "$root/$f" ] || fail "missing /$f"
done
dpkg-deb -f "$deb" Depends | grep -q swift && fail "Depends names a Swift library"
dpkg-deb -c "$deb" | grep -q 'conffiles' || true
ldd "$root"/usr/bin/* | grep -E 'swift|Foundation|not found' && fail "a binary still needs the toolchain" || true

# Config and one job, re-rooted into the work folder; the job is simulated by the packaged `dmilo` itself.
mkdir -p "$work/spool"/{incoming,work,done,failed,tmp,calibration}
sed -e "s#\"/var/spool/dmilo\"#\"$work/spool\"#" -e "s#\"/usr/share/dmilo/#\"$root/usr/share/dmilo/#" \
    -e "s#\"/var/lib/node_exporter/textfile/dmilo.prom\"#\"$work/dmilo.prom\"#" \
    -e 's#"max_budget": [0-9]*#"max_budget": 60#' -e 's#"threads": [0-9]*#"threads": 0#' \
    "$root/etc/dmilo/dmilod.json" > "$work/dmilod.json"
grep -q "$work/spool" "$work/dmilod.json" && grep -q "$root/usr/share/dmilo/model.gguf" "$work/dmilod.json" \
  || fail "could not re-root the packaged config"

cat > "$work/inside.sh" <<INSIDE
set -euo pipefail
# Hide the toolchain (and any Swift runtime a loader cache might still point at).
if [ -d "$toolchain" ]; then mount -t tmpfs -o ro,mode=0755 tmpfs "$toolchain"; fi
[ -z "\$(ls -A "$toolchain" 2>/dev/null)" ] || { echo "toolchain still visible"; exit 1; }
unset LD_LIBRARY_PATH
for b in dmilo dmilod dmilo-quantize; do "$root/usr/bin/\$b" --version; done
"$root/usr/bin/dmilo" simulate --image "$repo/Tests/Data/fashion-mnist-test/test-00101.png" \
  --operator '{"type":"super_resolution","factor":4}' --noise-sigma 0.01 --seed 1 --out "$work/spool/tmp/pkg-sr4.json" >/dev/null
for f in "$work"/spool/tmp/*; do case "\$f" in *.json) ;; *) mv "\$f" "$work/spool/incoming/" ;; esac; done
mv "$work/spool/tmp/pkg-sr4.json" "$work/spool/incoming/"
"$root/usr/bin/dmilod" --config "$work/dmilod.json" --once
INSIDE
echo "== in a private mount namespace with $toolchain hidden"
if [ "$(id -u)" = 0 ]; then ns=(unshare --mount --propagation private); else ns=(unshare --map-root-user --mount --propagation private); fi
"${ns[@]}" bash "$work/inside.sh" | tee "$work/inside.log"
version=$(dpkg-deb -f "$deb" Version)
for b in dmilo dmilod dmilo-quantize; do
  grep -Eq "^$b $version \(commit [0-9a-f]{7,}(-dirty)?, built [0-9T:-]+Z\)$" "$work/inside.log" || fail "$b --version"
done
m=$work/spool/done/pkg-sr4/metrics.json
[ -f "$m" ] || { ls -R "$work/spool" >&2; cat "$work"/spool/failed/*/error.json >&2 2>/dev/null || true; fail "job not in done/"; }
[ -f "$work/spool/done/pkg-sr4/reconstruction.png" ] || fail "no reconstruction.png"
grep -q "\"dmilo_version\" : \"$version (commit " "$m" || fail "metrics.json lacks dmilo_version: $(cat "$m")"
grep -q "^dmilo_build_info{version=\"$version\"" "$work/dmilo.prom" || fail "metrics file lacks dmilo_build_info"
echo "done/pkg-sr4: $(grep -E '"(psnr|unet_evaluations|dmilo_version)"' "$m" | tr -d '\n ')"

echo "== lintian"
lintian --tag-display-limit 0 "$deb" > "$work/lintian.txt" 2>&1 || true
cat "$work/lintian.txt"
justified=$(sed -n 's/^| `\([a-z0-9-]*\)` |.*/\1/p' "$repo/packaging/deb/README.md")
while read -r level _ tag _; do
  [ -n "$tag" ] || continue
  grep -qx -- "$tag" <<<"$justified" || fail "lintian tag $tag not justified in packaging/deb/README.md"
done < <(grep -E '^[EWIP]: ' "$work/lintian.txt" | sed 's/^\([EWIP]\): [^ ]* \([a-z0-9-]*\).*/\1 x \2/')

echo "== systemd-analyze verify / security (packaged unit, ExecStart re-rooted)"
mkdir -p "$work/units"
sed -e "s#/usr/bin/#$root/usr/bin/#g" "$root/lib/systemd/system/dmilod.service" > "$work/units/dmilod.service"
MANPATH="$root/usr/share/man" systemd-analyze verify "$work/units/dmilod.service"
systemd-analyze security --offline=true --no-pager --threshold=6 "$work/units/dmilod.service" | tail -3
echo "package-test: OK"
