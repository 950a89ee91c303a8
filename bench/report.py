#!/usr/bin/env python3
"""Turns the raw timings of bench/run.sh into the markdown report.

    report.py --raw raw.tsv --meta meta.env --out results/latest.md

raw.tsv rows: WORKLOAD SIDE KIND VALUE, KIND one of time_us (a timed run),
warmup_us (the warm-up run), mem_kb (peak RSS of the warm-up run).
The report is printed and written to --out.
"""

import argparse
import shlex
import statistics
import sys
from collections import defaultdict

SIDE_NAMES = {
    "cfssl": "cfssl script",
    "openssl": "openssl script",
    "raw1": "raw crypto, 1 thread",
    "raw2": "raw crypto, 2 threads",
}


def load(raw_path, meta_path):
    times = defaultdict(list)
    cpu = defaultdict(list)
    mem = {}
    with open(raw_path, encoding="utf-8") as f:
        for line in f:
            wl, side, kind, value = line.rstrip("\n").split("\t")
            if kind == "time_us":
                times[(wl, side)].append(int(value) / 1e6)
            elif kind == "cpu_us":
                cpu[(wl, side)].append(int(value) / 1e6)
            elif kind == "mem_kb":
                mem[(wl, side)] = int(value)
    meta = {}
    with open(meta_path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            parts = shlex.split(value)
            meta[key] = parts[0] if parts else ""
    return times, cpu, mem, meta


def fmt_time(seconds):
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_mem(kb):
    return "—" if kb is None else f"{kb / 1024:.0f} MB"


def fmt_ratio(r):
    if r is None:
        return "—"
    if r < 1:
        return f"{r:.3f} ({1 / r:.1f}× faster)"
    return f"{r:.2f} ({r:.2f}× slower)"


class Report:
    def __init__(self, times, cpu, mem, meta):
        self.times, self.cpu, self.mem, self.meta = times, cpu, mem, meta
        self.rows = []
        self.missed = []

    def median(self, wl, side):
        samples = self.times.get((wl, side))
        return statistics.median(samples) if samples else None

    def cpu_median(self, wl, side="certplan"):
        samples = self.cpu.get((wl, side))
        return statistics.median(samples) if samples else None

    def runs(self, wl, side):
        return len(self.times.get((wl, side), []))

    def add(self, label, wl, comparison=None, comparison_label="—", comparison_value=None,
            target=None, target_text="—", check=None, applies=True, value=None):
        """A row. `check(mine, other, ratio) -> bool` decides "met?"."""
        mine = value if value is not None else self.median(wl, "certplan")
        if mine is None:
            return
        other = comparison_value
        if comparison and other is None:
            other = self.median(wl, comparison)
            if other is None:
                return
        ratio = mine / other if (other and mine is not None) else None
        if check is None:
            met = "—"
        elif not applies:
            met = "n/a (other N)"
        else:
            ok = check(mine, other, ratio)
            met = "yes" if ok else "**no**"
            if not ok:
                self.missed.append(label + (f" vs {comparison_label}" if comparison else ""))
        runs = str(self.runs(wl, "certplan"))
        if comparison:
            runs += f" / {self.runs(wl, comparison)}"
        self.rows.append([
            label, fmt_time(mine), fmt_time(self.cpu_median(wl)), comparison_label, fmt_time(other), fmt_ratio(ratio),
            target_text, met, runs,
            fmt_mem(self.mem.get((wl, "certplan"))),
            fmt_mem(self.mem.get((wl, comparison))) if comparison else "—",
        ])

    def table(self):
        head = ["workload", "certplan median", "certplan CPU", "comparison", "comparison median",
                "ratio (certplan ÷ comparison)", "target", "met?", "runs",
                "certplan peak RSS", "comparison peak RSS"]
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(out)


def build(times, cpu, mem, meta):
    r = Report(times, cpu, mem, meta)
    workloads = sorted({wl for wl, _ in times})

    def applies_sizes(prefix):
        return sorted(int(wl.rsplit("-", 1)[1]) for wl in workloads if wl.startswith(prefix))

    big = int(meta.get("BIG_N", 5000))
    static = int(meta.get("STATIC_N", 1000))

    for key, name in (("ecdsa-p256", "ECDSA P-256"), ("rsa-2048", "RSA-2048")):
        for n in applies_sizes(f"apply-{key}-"):
            wl = f"apply-{key}-{n}"
            if key == "ecdsa-p256" and n == big:
                continue  # below, with its own targets
            if r.median(wl, "cfssl") is None:
                r.add(f"N={n}, {name}, full apply from empty (certplan alone)", wl)
            par = meta.get(f"MODE_{wl}") == "par"
            label = f"N={n}, {name}, full apply from empty"
            how = " (2 jobs at a time)" if par else ""
            if key == "ecdsa-p256":
                r.add(label, wl, "cfssl", "cfssl script" + how,
                      target_text="≥ 15× faster (ratio ≤ 0.067)" if n == 100 else "—",
                      check=(lambda m, o, x: x <= 1 / 15) if n == 100 else None)
            else:
                r.add(label, wl, "cfssl", "cfssl script" + how,
                      target_text="≤ 0.6" if n == 100 else "—",
                      check=(lambda m, o, x: x <= 0.6) if n == 100 else None)
            r.add(label, wl, "openssl", "openssl script" + how)
            if key == "rsa-2048" and n == 100:
                r.add(label, wl, "raw1", "raw crypto, 1 thread (back to back)",
                      target_text="≤ 1.2", check=lambda m, o, x: x <= 1.2)
                r.add(label, wl, "raw2", "raw crypto, 2 threads (stricter reading)",
                      target_text="≤ 1.2", check=lambda m, o, x: x <= 1.2)
            else:
                r.add(label, wl, "raw1", "raw crypto, 1 thread (back to back)")
                r.add(label, wl, "raw2", "raw crypto, 2 threads")

    wl = f"noop-{static}"
    r.add(f"N={static}, nothing to do", wl, target_text="< 50 ms",
          check=lambda m, o, x: m < 0.050, applies=static == 1000)

    wl = f"san-{static}"
    sign_ms = float(meta.get("SIGN_MS_ecdsa", "0") or 0)
    allowance = 0.050 + sign_ms / 1000
    r.add(f"N={static}, one SAN added to the API server (ECDSA)", wl, "cfssl",
          "one `cfssl gencert` of the API server",
          target_text=f"< 50 ms + one signature ({sign_ms:.3f} ms) = {allowance * 1000:.1f} ms",
          check=lambda m, o, x: m < allowance, applies=static == 1000)

    wl = f"apply-ecdsa-p256-{big}"
    label = f"N={big}, ECDSA P-256, full apply"
    r.add(label, wl, target_text="< 3 s", check=lambda m, o, x: m < 3.0, applies=big == 5000)
    peak = mem.get((wl, "certplan"))
    if peak is not None:
        ok = peak < 300 * 1024
        met = ("yes" if ok else "**no**") if big == 5000 else "n/a (other N)"
        if big == 5000 and not ok:
            r.missed.append(label + " (peak memory)")
        r.rows.append([label + ": peak memory", fmt_mem(peak), "—", "—", "—", "—",
                       "< 300 MB", met, "1", fmt_mem(peak), "—"])
    base = r.median(f"apply-ecdsa-p256-{static}", "certplan")
    if base is not None and r.median(wl, "certplan") is not None:
        factor = big / static
        r.add(label + ": linearity", wl, None, f"{factor:g} × N={static} full apply",
              comparison_value=factor * base, target_text="≤ 1.3",
              check=lambda m, o, x: x <= 1.3)
    r.add(label, wl, "raw1", "raw crypto, 1 thread (back to back)")
    r.add(label, wl, "raw2", "raw crypto, 2 threads")

    r.add(f"N={big}, `check`", f"check-{big}", target_text="< 300 ms",
          check=lambda m, o, x: m < 0.300, applies=big == 5000)
    r.add(f"N={big}, nothing to do", f"noop-{big}")
    return r


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    times, cpu, mem, meta = load(args.raw, args.meta)
    r = build(times, cpu, mem, meta)
    m = meta
    lines = [
        "# certplan benchmark results",
        "",
        f"`bash bench/run.sh{' --quick' if m.get('QUICK') == '1' else ''}` on {m.get('DATE', '?')}, "
        f"certplan `{m.get('CERTPLAN_REV', '?')}`.",
        "",
        f"Machine: {m.get('NPROC', '?')} cores, {m.get('CPU', '?')}, "
        f"{int(m.get('MEM_KB', 0)) / 1024 / 1024:.1f} GiB memory, Linux {m.get('KERNEL', '?')}, "
        f"output trees on {m.get('FS', '?')}. Load average at start {m.get('LOAD_START', '?')}, "
        f"at end {m.get('LOAD_END', '?')}.",
        "",
        f"Tools: {m.get('CFSSL_VERSION', '?')}, {m.get('OPENSSL_VERSION', '?')}. "
        f"At most {m.get('MAX_RUNS', '?')} timed runs per workload, cut to what fits in "
        f"{m.get('BUDGET', '?')} s; every side also had one warm-up run (not counted) "
        "which gave its peak memory.",
        "",
        r.table(),
        "",
    ]
    checks = [v for k, v in sorted(m.items()) if k.startswith("COMPARE_")]
    if checks:
        lines.append(f"Same certificates: {len(checks)} full-apply workload(s) checked, "
                     + "; ".join(sorted(set(checks))) + " (subject, SANs, EKUs, CA flag and key "
                     "type of a sample, cfssl/openssl against certplan).")
    if m.get("SAN_PLAN"):
        lines.append(f"`certplan plan` for the one-SAN change: {m['SAN_PLAN']}")
    lines += ["", "Targets missed: " + ("; ".join(r.missed) if r.missed else "none") + "."]
    text = "\n".join(lines) + "\n"
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
