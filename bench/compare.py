#!/usr/bin/env python3
"""Checks that the cfssl and openssl scripts issued the same certificates as
certplan: for a sample of certificates (sample.tsv from genscripts.py),
compares subject, SANs, EKUs, CA flag and key type as openssl reads them.

    compare.py SAMPLE_TSV CERTPLAN_OUT [--sides cfssl,openssl]

Prints one line per difference and exits 1 when there is any.
"""

import argparse
import os
import re
import subprocess
import sys


def describe(path: str):
    text = subprocess.run(
        ["openssl", "x509", "-in", path, "-noout", "-text", "-nameopt", "RFC2253"],
        check=True, capture_output=True, text=True,
    ).stdout
    line = re.search(r"^\s*Subject: ?(.*)$", text, re.M).group(1)
    # RDNs, multi-valued RDNs (`+`) split too: only the set of values matters.
    subject = sorted(p.strip() for p in re.split(r"(?<!\\)[,+]", line) if p.strip())

    def after(header: str) -> str:
        m = re.search(re.escape(header) + r".*\n\s*(.*)\n", text)
        return m.group(1).strip() if m else ""

    sans = sorted(s.strip() for s in after("X509v3 Subject Alternative Name").split(",") if s.strip())
    sans = [s.replace("IP Address:0:0:0:0:0:0:0:1", "IP Address:::1") for s in sans]
    ekus = sorted(s.strip() for s in after("X509v3 Extended Key Usage").split(",") if s.strip())
    ca = "CA:TRUE" in text
    key = re.search(r"Public Key Algorithm: (\S+)", text).group(1)
    bits = re.search(r"Public-Key: \((\d+) bit\)", text).group(1)
    return {"subject": subject, "sans": sans, "eku": ekus, "ca": ca, "key": f"{key}/{bits}"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("sample")
    ap.add_argument("certplan_out")
    ap.add_argument("--sides", default="cfssl,openssl")
    args = ap.parse_args()
    sides = [s for s in args.sides.split(",") if s]
    problems = 0
    checked = 0
    with open(args.sample, encoding="utf-8") as f:
        for line in f:
            ident, mine, cfssl, ossl = line.rstrip("\n").split("\t")
            want = describe(os.path.join(args.certplan_out, mine))
            for side, path in (("cfssl", cfssl), ("openssl", ossl)):
                if side not in sides:
                    continue
                got = describe(path)
                for field, value in want.items():
                    if got[field] != value:
                        problems += 1
                        print(f"{ident}: {side} {field} {got[field]} != certplan {value}")
            checked += 1
    print(f"compare: {checked} certificate(s), {problems} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
