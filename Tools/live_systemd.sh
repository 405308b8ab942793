#!/usr/bin/env bash
# Live systemd run of the package (not in CI: needs root, systemd-nspawn and the Debian mirror for debootstrap).
#   sudo bash Tools/live_systemd.sh [dist/dmilo_VERSION_ARCH.deb]
# Boots a debootstrapped Debian 12 root with systemd-nspawn -b, `apt install ./dmilo_*.deb` inside it, drops two
# jobs as a sensor user of group dmilo, and shows `systemctl status dmilod` (READY, STATUS=), the results, the
# watchdog, `systemctl reload` (SIGHUP), `systemctl stop` during a job (the job goes back to incoming/), and the
# live `systemd-analyze security` score. The transcript is what Systemd/README.md quotes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
deb=$(realpath "${1:-$(ls "$repo"/dist/dmilo_*.deb | tail -1)}")
cache=${DMILO_NSPAWN_DIR:-/var/tmp/dmilo-nspawn}
base=$cache/base          # pristine debootstrap (kept between runs)
root=$cache/run           # this run's copy
machine=dmilo-live

if [ ! -x "$base/usr/bin/systemctl" ]; then
  echo "== debootstrap Debian 12 (minbase + systemd) into $base"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$base" http://deb.debian.org/debian
fi
rm -rf "$root"
cp -a "$base" "$root"
echo "$machine" > "$root/etc/hostname"
cp "$deb" "$root/root/"
# Test images where the sensor user can read them.
install -d -m 0755 "$root/srv/images"
install -m 0644 "$repo/Tests/Data/fashion-mnist-test/test-00101.png" "$repo/Tests/Data/fashion-mnist-test/test-00103.png" \
  "$root/srv/images/"

# No machined/system bus on the host here: --keep-unit --register=no; the host's network is shared (apt).
systemd-nspawn --keep-unit --register=no -q -D "$root" -b --console=pipe -M "$machine" > "$cache/console.log" 2>&1 &
nspawn=$!
trap 'inside systemctl poweroff >/dev/null 2>&1 || true; sleep 3; kill $nspawn 2>/dev/null || true' EXIT
leader=""
for _ in $(seq 60); do leader=$(pgrep -P $nspawn | head -1 || true); [ -n "$leader" ] && break; sleep 1; done
inside() { nsenter -t "$leader" -a "$@"; }
run() { echo; echo "# $*"; inside bash -c "cd /root; $*" || echo "(exit status $?)"; }
for _ in $(seq 60); do state=$(inside systemctl is-system-running 2>/dev/null || true)
  case $state in running|degraded) break ;; esac; sleep 1; done
echo "container: $(inside cat /etc/debian_version), systemd $(inside systemctl --version | head -1 | cut -d' ' -f2), state $state"

run "ls /opt/swift 2>&1 | head -1; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y ./$(basename "$deb") 2>&1 | grep -E '^(Setting up|Created|The following NEW|  )' "
run "dmilod --version; dmilo --version; dmilo-quantize --version"
run "systemctl is-enabled dmilod; systemctl is-active dmilod; getent passwd dmilo; ls -ld /var/spool/dmilo/*"
run "sleep 3; systemctl status dmilod --no-pager -n 5 | sed -n '1,12p'"
run "systemctl show dmilod -p Type -p NotifyAccess -p StatusText -p WatchdogUSec -p MainPID"

# Two jobs from a sensor: a user in group dmilo, data files first, manifests last (via tmp/ + rename).
inside useradd -m -G dmilo sensor
run "cd /home/sensor && su sensor -c 'umask 027; \
  dmilo simulate --image /srv/images/test-00101.png --operator \"{\\\"type\\\":\\\"super_resolution\\\",\\\"factor\\\":4}\" --noise-sigma 0.01 --seed 1 --out /var/spool/dmilo/tmp/sr4.json >/dev/null; \
  dmilo simulate --image /srv/images/test-00103.png --operator \"{\\\"type\\\":\\\"inpainting\\\",\\\"missing_fraction\\\":0.7,\\\"mask_seed\\\":7}\" --noise-sigma 0.01 --seed 1 --out /var/spool/dmilo/tmp/inpaint70.json >/dev/null; \
  cd /var/spool/dmilo/tmp && for f in *; do case \$f in *.json) ;; *) mv \$f ../incoming/ ;; esac; done; mv sr4.json inpaint70.json ../incoming/'; ls -l /var/spool/dmilo/incoming"
# STATUS= while the two jobs run (every 15 s, at most 10 min).
run "for i in \$(seq 40); do systemctl show dmilod -p StatusText --value; [ \$(ls /var/spool/dmilo/done | wc -l) -ge 2 ] && break; sleep 15; done; systemctl show dmilod -p StatusText --value"
run "ls -l /var/spool/dmilo/done/*/ | head -30; grep -hE '\"(job|psnr|ssim|wall_seconds|dmilo_version)\"' /var/spool/dmilo/done/*/metrics.json"
run "systemctl status dmilod --no-pager -n 0 | sed -n '1,12p'"
run "journalctl -u dmilod --no-pager -o short-monotonic | tail -n 12"
run "systemctl show dmilod -p WatchdogUSec -p WatchdogTimestamp; sleep 35; systemctl show dmilod -p WatchdogTimestamp"
run "systemctl reload dmilod; sleep 2; systemctl show dmilod -p ActiveState -p SubState -p StatusText; journalctl -u dmilod --no-pager -n 3 -o cat"

# A longer job, then `systemctl stop` while it runs: it must go back to incoming/.
run "su sensor -c 'cd /var/spool/dmilo/tmp && umask 027 && dmilo simulate --image /srv/images/test-00101.png --operator \"{\\\"type\\\":\\\"gaussian_blur\\\",\\\"size\\\":9,\\\"sigma\\\":1.5}\" --solver \"{\\\"method\\\":\\\"dmilo-pgd\\\",\\\"budget\\\":2000}\" --noise-sigma 0.01 --seed 1 --out long.json >/dev/null && for f in *; do case \$f in *.json) ;; *) mv \$f ../incoming/ ;; esac; done; mv long.json ../incoming/'"
run "for i in \$(seq 20); do s=\$(systemctl show dmilod -p StatusText --value); case \$s in running*) echo \"\$s\"; break;; esac; sleep 1; done; sleep 3; systemctl show dmilod -p StatusText --value"
run "time systemctl stop dmilod; systemctl is-active dmilod || true; journalctl -u dmilod --no-pager -n 6 -o cat; ls -a /var/spool/dmilo/incoming /var/spool/dmilo/work"
run "systemctl start dmilod; sleep 2; systemctl show dmilod -p StatusText --value"
run "systemd-analyze security dmilod --no-pager | tail -n 1"
echo; echo "== done"
