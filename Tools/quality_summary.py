#!/usr/bin/env python3
"""Summaries of `dmilo bench quality --records` files for the README: the per-task targets of DMILO-PGD, the
default method per task (the best mean PSNR of the last iterate), and the early-stop table.

    python3 Tools/quality_summary.py targets FIXED.jsonl...
    python3 Tools/quality_summary.py stop --fixed FIXED.jsonl... --rule RULE.jsonl --rule4x RULE4X.jsonl

Records are JSON lines (task, method, image, psnr, evaluations, stoppedBy, ...); a job present twice counts once,
the later record winning, as in `--merge`. Standard library only."""
import argparse
import json
import math
import statistics

TASKS = ["sr2-box", "sr2-bicubic", "sr4", "inpainting70", "gaussian-blur", "motion-blur", "cs25", "hdr",
         "sr4-s05", "inpainting70-s05"]
METHODS = ["dmilo-pgd", "dmilo", "dmplug", "dps", "baseline"]


def load(paths):
    jobs = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    jobs[(r["task"], r["method"], r["image"])] = r
    return jobs


def by_row(jobs):
    rows = {}
    for (task, method, image), r in jobs.items():
        rows.setdefault((task, method), {})[image] = r
    return rows


def mean(a):
    return sum(a) / len(a) if a else math.nan


def targets(paths):
    rows = by_row(load(paths))
    print("| task | images | DMILO-PGD | DMILO | DMPlug | DPS | baseline | PGD − DPS | PGD − (DMPlug + 1) | PGD − (baseline + 3) | default (best) | default − next best |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for task in TASKS:
        have = {m: rows.get((task, m), {}) for m in METHODS}
        common = set.intersection(*(set(v) for v in have.values())) if all(have.values()) else set()
        if not common:
            continue
        ps = {m: mean([have[m][i]["psnr"] for i in sorted(common)]) for m in METHODS}
        ranked = sorted(METHODS, key=lambda m: -ps[m])
        pgd = ps["dmilo-pgd"]
        print(f"| {task} | {len(common)} | " + " | ".join(f"{ps[m]:.2f}" for m in METHODS)
              + f" | {pgd - ps['dps']:+.2f} | {pgd - ps['dmplug'] - 1:+.2f} | {pgd - ps['baseline'] - 3:+.2f}"
              + f" | {ranked[0]} | {ps[ranked[0]] - ps[ranked[1]]:+.2f} |")


def stop(fixed, rule, rule4x):
    f, r, r4 = by_row(load(fixed)), by_row(load(rule)), by_row(load(rule4x))
    print("| task | method | images | fixed 500: PSNR @ evals | rule 500: PSNR @ evals | saved | PSNR change | stopped by (500) "
          "| rule, 4× budget: PSNR @ evals | 4× + rule − fixed 500 | stopped by (4×) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    tot = {"fe": [], "re": [], "fp": [], "rp": [], "r4p": []}
    for task in TASKS:
        for (t, method), rr in sorted(r.items()):
            if t != task:
                continue
            ff, r44 = f.get((task, method), {}), r4.get((task, method), {})
            imgs = sorted(set(rr) & set(ff) & set(r44))
            if not imgs:
                continue
            fe = [ff[i]["evaluations"] for i in imgs]; re_ = [rr[i]["evaluations"] for i in imgs]
            fp = [ff[i]["psnr"] for i in imgs]; rp = [rr[i]["psnr"] for i in imgs]
            r4p = [r44[i]["psnr"] for i in imgs]; r4e = [r44[i]["evaluations"] for i in imgs]
            count = lambda rows: ", ".join(f"{k} {v}" for k, v in sorted(
                {s: sum(1 for i in imgs if rows[i]["stoppedBy"] == s) for s in {rows[i]["stoppedBy"] for i in imgs}}.items()))
            print(f"| {task} | {method} | {len(imgs)} | {mean(fp):.2f} @ {mean(fe):.0f} | {mean(rp):.2f} @ {mean(re_):.0f} | "
                  f"{100 * (1 - mean(re_) / mean(fe)):.0f} % | {mean(rp) - mean(fp):+.2f} | {count(rr)} | "
                  f"{mean(r4p):.2f} @ {mean(r4e):.0f} | {mean(r4p) - mean(fp):+.2f} | {count(r44)} |")
            tot["fe"] += fe; tot["re"] += re_; tot["fp"] += fp; tot["rp"] += rp; tot["r4p"] += r4p
    if tot["fe"]:
        print(f"\nall rows: evaluations saved at the default budget {100 * (1 - mean(tot['re']) / mean(tot['fe'])):.1f} %, "
              f"mean PSNR change {mean(tot['rp']) - mean(tot['fp']):+.2f} dB; 4× budget with the rule against the fixed "
              f"default budget {mean(tot['r4p']) - mean(tot['fp']):+.2f} dB ({len(tot['fe'])} jobs)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("targets"); t.add_argument("records", nargs="+")
    s = sub.add_parser("stop")
    s.add_argument("--fixed", nargs="+", required=True); s.add_argument("--rule", required=True)
    s.add_argument("--rule4x", required=True)
    a = ap.parse_args()
    if a.cmd == "targets":
        targets(a.records)
    else:
        stop(a.fixed, [a.rule], [a.rule4x])


if __name__ == "__main__":
    main()
