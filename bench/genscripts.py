#!/usr/bin/env python3
"""Writes the cfssl and openssl-CLI equivalents of a certplan plan.

The certificates come from `certplan inspect PLAN --format json`, so the
scripts issue exactly the certificates certplan issues: same CAs, subjects,
SANs, EKUs, key types and validity. What the scripts do not do is everything
else certplan writes (kubeconfigs, flag files, copies per host, state).

    genscripts.py --inspect inspect.json --dir SCRIPTS \
        --cfssl-out DIR --openssl-out DIR [--only ID]

Writes into SCRIPTS:
  cfssl/config.json, cfssl/csr/*.json    inputs of `cfssl gencert` (generated
                                         here, before any timing)
  openssl/*.cnf                          extension files of `openssl x509`
  cfssl-seq.sh, cfssl-par.sh             one `cfssl gencert | cfssljson` per
                                         certificate; -par runs two at a time
  openssl-seq.sh, openssl-par.sh         `openssl req -new -newkey` +
                                         `openssl x509 -req` per certificate
  counts.env                             KEY, CAS, LEAVES, KEYPAIRS for the
                                         raw-crypto baseline
  sample.tsv                             id, certplan/cfssl/openssl file of a
                                         sample of certificates, to compare

With --only ID the scripts issue that one certificate, signed by the CA
files already in the output directories (the "one SAN added" comparison).
"""

import argparse
import json
import os
import shlex
import sys
from datetime import datetime

CFSSL_KEYS = {
    "ecdsa-p256": {"algo": "ecdsa", "size": 256},
    "ecdsa-p384": {"algo": "ecdsa", "size": 384},
    "rsa-2048": {"algo": "rsa", "size": 2048},
    "rsa-3072": {"algo": "rsa", "size": 3072},
    "rsa-4096": {"algo": "rsa", "size": 4096},
}

OPENSSL_NEWKEY = {
    "ecdsa-p256": "-newkey ec -pkeyopt ec_paramgen_curve:P-256",
    "ecdsa-p384": "-newkey ec -pkeyopt ec_paramgen_curve:P-384",
    "rsa-2048": "-newkey rsa:2048",
    "rsa-3072": "-newkey rsa:3072",
    "rsa-4096": "-newkey rsa:4096",
}

OPENSSL_GENPKEY = {
    "ecdsa-p256": "-algorithm EC -pkeyopt ec_paramgen_curve:P-256",
    "ecdsa-p384": "-algorithm EC -pkeyopt ec_paramgen_curve:P-384",
    "rsa-2048": "-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
    "rsa-3072": "-algorithm RSA -pkeyopt rsa_keygen_bits:3072",
    "rsa-4096": "-algorithm RSA -pkeyopt rsa_keygen_bits:4096",
}

CFSSL_EKU = {"serverAuth": "server auth", "clientAuth": "client auth"}


def stem(artifact_id: str) -> str:
    """A flat file name for an artifact id: `cert/kubelet/w1` -> `cert_kubelet_w1`."""
    return artifact_id.replace("/", "_")


def hours(artifact) -> int:
    """The validity the plan gives, in whole hours (NotBefore is backdated)."""
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    span = parse(artifact["not_after"]) - parse(artifact["not_before"])
    return max(1, round(span.total_seconds() / 3600))


def openssl_subject(subject) -> str:
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace("/", "\\/").replace("+", "\\+")

    parts = []
    for key in ("c", "st", "l"):
        if subject.get(key):
            parts.append(f"{key.upper()}={esc(subject[key])}")
    parts += [f"O={esc(o)}" for o in subject.get("o") or []]
    parts += [f"OU={esc(ou)}" for ou in subject.get("ou") or []]
    parts.append(f"CN={esc(subject['cn'])}")
    return "/" + "/".join(parts)


def cfssl_names(subject):
    base = {}
    for key, name in (("c", "C"), ("st", "ST"), ("l", "L")):
        if subject.get(key):
            base[name] = subject[key]
    if subject.get("ou"):
        base["OU"] = subject["ou"][0]
    orgs = subject.get("o") or []
    if not orgs:
        return [base] if base else []
    return [dict(base, O=o) for o in orgs]


def cfssl_hosts(sans):
    return list(sans.get("dns") or []) + list(sans.get("ip") or [])


def openssl_san(sans) -> str:
    entries = [f"DNS:{d}" for d in sans.get("dns") or []]
    entries += [f"IP:{ip}" for ip in sans.get("ip") or []]
    return ", ".join(entries)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inspect", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cfssl-out", required=True)
    ap.add_argument("--openssl-out", required=True)
    ap.add_argument("--only", default=None)
    args = ap.parse_args()

    with open(args.inspect, encoding="utf-8") as f:
        artifacts = json.load(f)["artifacts"]
    cas = [a for a in artifacts if a["kind"] == "ca"]
    leaves = [a for a in artifacts if a["kind"] == "cert"]
    keypairs = [a for a in artifacts if a["kind"] == "keypair"]
    by_id = {a["id"]: a for a in artifacts}
    if args.only:
        if args.only not in by_id or by_id[args.only]["kind"] != "cert":
            sys.exit(f"genscripts: no certificate `{args.only}` in the plan")
        cas, leaves, keypairs = [], [by_id[args.only]], []

    keys = {a["key"] for a in cas + leaves + keypairs}
    for key in keys:
        if key not in CFSSL_KEYS:
            sys.exit(f"genscripts: key type `{key}` has no cfssl/openssl equivalent here")

    root = os.path.abspath(args.dir)
    cfssl_dir = os.path.join(root, "cfssl")
    csr_dir = os.path.join(cfssl_dir, "csr")
    ossl_dir = os.path.join(root, "openssl")
    for d in (csr_dir, ossl_dir):
        os.makedirs(d, exist_ok=True)
    cout = os.path.abspath(args.cfssl_out)
    oout = os.path.abspath(args.openssl_out)
    q = shlex.quote

    # cfssl signing profiles: one per (EKUs, validity, key encipherment).
    profiles = {}

    def profile(a) -> str:
        rsa = a["key"].startswith("rsa")
        name = "-".join(a["eku"]) + f"-{hours(a)}h" + ("-rsa" if rsa else "")
        usages = ["digital signature"] + (["key encipherment"] if rsa else [])
        usages += [CFSSL_EKU[e] for e in a["eku"]]
        profiles[name] = {"expiry": f"{hours(a)}h", "usages": usages}
        return name

    def write_json(path, value):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=1)

    cfssl_cas, cfssl_leaves, ossl_cas, ossl_leaves = [], [], [], []
    config = os.path.join(cfssl_dir, "config.json")

    for a in cas:
        s = stem(a["id"])
        csr = os.path.join(csr_dir, f"{s}.json")
        body = {"CN": a["subject"]["cn"], "key": CFSSL_KEYS[a["key"]],
                "ca": {"expiry": f"{hours(a)}h"}}
        names = cfssl_names(a["subject"])
        if names:
            body["names"] = names
        write_json(csr, body)
        cfssl_cas.append(f"cfssl gencert -initca {q(csr)} | cfssljson -bare {q(cout + '/' + s)}")
        cnf = os.path.join(ossl_dir, f"{s}.cnf")
        with open(cnf, "w", encoding="utf-8") as f:
            f.write("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n"
                    "[v3_ca]\nbasicConstraints = critical, CA:TRUE\n"
                    "keyUsage = critical, digitalSignature, keyCertSign, cRLSign\n"
                    "subjectKeyIdentifier = hash\n")
        ossl_cas.append(
            f"openssl req -x509 -new {OPENSSL_NEWKEY[a['key']]} -nodes"
            f" -keyout {q(oout + '/' + s + '.key')} -out {q(oout + '/' + s + '.crt')}"
            f" -subj {q(openssl_subject(a['subject']))} -days {max(1, round(hours(a) / 24))}"
            f" -config {q(cnf)} -extensions v3_ca"
        )

    for a in leaves:
        s = stem(a["id"])
        ca = stem(a["issuer"])
        csr = os.path.join(csr_dir, f"{s}.json")
        body = {"CN": a["subject"]["cn"], "hosts": cfssl_hosts(a["sans"]),
                "key": CFSSL_KEYS[a["key"]]}
        names = cfssl_names(a["subject"])
        if names:
            body["names"] = names
        write_json(csr, body)
        cfssl_leaves.append(
            f"cfssl gencert -ca={q(cout + '/' + ca + '.pem')} -ca-key={q(cout + '/' + ca + '-key.pem')}"
            f" -config={q(config)} -profile={profile(a)} {q(csr)} | cfssljson -bare {q(cout + '/' + s)}"
        )
        cnf = os.path.join(ossl_dir, f"{s}.cnf")
        usage = "digitalSignature" + (", keyEncipherment" if a["key"].startswith("rsa") else "")
        with open(cnf, "w", encoding="utf-8") as f:
            f.write("[v3]\nbasicConstraints = critical, CA:FALSE\n"
                    f"keyUsage = critical, {usage}\n"
                    f"extendedKeyUsage = {', '.join(a['eku'])}\n"
                    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
            san = openssl_san(a["sans"])
            if san:
                f.write(f"subjectAltName = {san}\n")
        o = oout + "/" + s
        ossl_leaves.append(
            f"openssl req -new {OPENSSL_NEWKEY[a['key']]} -nodes -keyout {q(o + '.key')}"
            f" -out {q(o + '.csr')} -subj {q(openssl_subject(a['subject']))}"
            f" && openssl x509 -req -in {q(o + '.csr')} -CA {q(oout + '/' + ca + '.crt')}"
            f" -CAkey {q(oout + '/' + ca + '.key')} -days {max(1, round(hours(a) / 24))}"
            f" -extfile {q(cnf)} -extensions v3 -out {q(o + '.crt')}"
        )

    for a in keypairs:
        s = stem(a["id"])
        csr = os.path.join(csr_dir, f"{s}.json")
        write_json(csr, {"CN": s, "key": CFSSL_KEYS[a["key"]]})
        cfssl_leaves.append(f"cfssl genkey {q(csr)} | cfssljson -bare {q(cout + '/' + s)}")
        o = oout + "/" + s
        ossl_leaves.append(
            f"openssl genpkey {OPENSSL_GENPKEY[a['key']]} -out {q(o + '.key')}"
            f" && openssl pkey -in {q(o + '.key')} -pubout -out {q(o + '.pub')}"
        )

    write_json(config, {"signing": {"default": {"expiry": "8760h"}, "profiles": profiles}})

    def lines(path, cmds):
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(c + "\n" for c in cmds))

    for tool, out, ca_cmds, leaf_cmds in (
        ("cfssl", cout, cfssl_cas, cfssl_leaves),
        ("openssl", oout, ossl_cas, ossl_leaves),
    ):
        lines(os.path.join(root, f"{tool}-cas.cmds"), ca_cmds)
        lines(os.path.join(root, f"{tool}-leaves.cmds"), leaf_cmds)
        head = ("#!/bin/bash\n# Generated by bench/genscripts.py.\n"
                f"set -eo pipefail\nmkdir -p {q(out)}\n")
        with open(os.path.join(root, f"{tool}-seq.sh"), "w", encoding="utf-8") as f:
            f.write(head + "".join(c + "\n" for c in ca_cmds + leaf_cmds))
        # Two jobs at a time: the CAs first (independent of each other), then
        # every leaf; xargs exits non-zero when any job failed.
        par = head
        for part in ("cas", "leaves"):
            cmds = os.path.join(root, f"{tool}-{part}.cmds")
            par += f"xargs -P2 -d '\\n' -n1 bash -o pipefail -c < {q(cmds)}\n"
        with open(os.path.join(root, f"{tool}-par.sh"), "w", encoding="utf-8") as f:
            f.write(par)

    key = sorted(keys)[0] if len(keys) == 1 else "mixed"
    with open(os.path.join(root, "counts.env"), "w", encoding="utf-8") as f:
        f.write(f"KEY={key}\nCAS={len(cas)}\nLEAVES={len(leaves)}\nKEYPAIRS={len(keypairs)}\n")

    # A sample to compare: every CA, and the first certificate of each kind
    # (`cert/kubelet-server/*` once).
    seen, sample = set(), []
    for a in cas + leaves:
        parts = a["id"].split("/")
        kind = "/".join(parts[:2]) if len(parts) > 2 else a["id"]
        if kind in seen:
            continue
        seen.add(kind)
        mine = next((p["path"] for p in a["files"] if p["role"] == "cert"), "")
        s = stem(a["id"])
        sample.append(f"{a['id']}\t{mine}\t{cout}/{s}.pem\t{oout}/{s}.crt\n")
    with open(os.path.join(root, "sample.tsv"), "w", encoding="utf-8") as f:
        f.write("".join(sample))
    return 0


if __name__ == "__main__":
    sys.exit(main())
