#!/usr/bin/env python3
"""Checks a certplan output tree with tools certplan did not write.

Every PEM block in the tree (and every certificate and key a kubeconfig
embeds as `*-data`) is read by code that shares nothing with certplan:

- each certificate is linted with pkilint's RFC 5280 linter (the validators
  `lint_pkix_cert` runs) and loaded with Python's `cryptography` and with
  `openssl x509 -noout`;
- each private key is loaded with `cryptography`'s `load_pem_private_key` and
  with `openssl pkey -noout`, each public key with `load_pem_public_key` and
  `openssl pkey -pubin -noout`;
- each key matches its certificate: every certificate, key and public key file
  that `certplan inspect --format json` lists under one artifact holds the same
  public key, and the client certificate a kubeconfig embeds holds the public
  key of the client key beside it. A file with a key or certificate that
  inspect does not list is a problem too: nothing could pair it.

A pkilint finding at WARNING or above is a problem, with one exception:
`pkix.invalid_domain_name_syntax` for a subjectAltName dNSName that is a
single DNS label (`localhost`, `kubernetes`, a host name), which Kubernetes'
own certificates carry. Nothing else is waived.

Usage: check_tree.py DIR INSPECT_JSON    (INSPECT_JSON may be `-` for stdin)

Prints every problem as `FILE: CHECKER: FINDING` and a summary of what it
checked; exits 1 when there is a problem, 2 when it cannot run.
"""

import base64
import binascii
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from pkilint import loader
    from pkilint.pkix import certificate, extension, name
    from pkilint.validation import ValidationFindingSeverity
except ImportError as e:
    print(f"check_tree.py: {e}; tests/run.sh installs pkilint and cryptography", file=sys.stderr)
    sys.exit(2)

PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL
)
KUBECONFIG_DATA = re.compile(
    rb"^[ \t]*(client-certificate-data|client-key-data|certificate-authority-data):[ \t]*(\S+)[ \t]*$",
    re.MULTILINE,
)
PRIVATE_KEY_LABELS = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"}
SINGLE_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
DOMAIN_NAME_SYNTAX = "pkix.invalid_domain_name_syntax"
OPENSSL_THREAD = re.compile(r"^[0-9A-F]+:(?=error:)")

# The validator set of pkilint's `lint_pkix_cert` command (RFC 5280 only).
PKIX_VALIDATOR = certificate.create_pkix_certificate_validator_container(
    certificate.create_decoding_validators(
        name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
    ),
    [
        certificate.create_issuer_validator_container([]),
        certificate.create_validity_validator_container(),
        certificate.create_subject_validator_container([]),
        certificate.create_extensions_validator_container([]),
        certificate.create_spki_validator_container([]),
    ],
)


class Block:
    """One PEM block, found in a file or in a kubeconfig's `*-data` field."""

    def __init__(self, where, label, pem, embedded):
        self.where = where
        self.label = label
        self.pem = pem
        self.embedded = embedded


class Tree:
    """Every PEM block of an output tree, and the problems found in it."""

    def __init__(self, root):
        self.root = root
        self.blocks = []
        self.problems = []
        # The files that hold a PEM block or a kubeconfig's `*-data`.
        self.pem_files = set()
        # A kubeconfig's (path, client certificate, client key), in the order
        # of its users.
        self.kubeconfig_pairs = []
        for path in sorted(self._files()):
            self._read(path)

    def _files(self):
        for dirpath, _, filenames in os.walk(self.root):
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                if os.path.isfile(path):
                    yield os.path.relpath(path, self.root)

    def _read(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            data = f.read()
        before = len(self.blocks)
        self.blocks.extend(pem_blocks(data, rel))
        certs, keys = [], []
        for field, value in KUBECONFIG_DATA.findall(data):
            where = f"{rel} ({field.decode()})"
            try:
                decoded = base64.b64decode(value, validate=True)
            except binascii.Error as e:
                self.problem(where, "base64", f"not base64: {e}")
                continue
            found = pem_blocks(decoded, where, embedded=True)
            if not found:
                self.problem(where, "pem", "holds no PEM block")
            self.blocks.extend(found)
            if field == b"client-certificate-data":
                certs.extend(b for b in found if b.label == "CERTIFICATE")
            elif field == b"client-key-data":
                keys.extend(b for b in found if b.label in PRIVATE_KEY_LABELS)
        if len(self.blocks) > before:
            self.pem_files.add(rel)
        # client-go reads client-certificate-data as the leaf and then the
        # intermediates that chain it to its CA (Go's tls.X509KeyPair): the
        # first certificate is the one the single key belongs to.
        if (certs or keys) and (len(keys) != 1 or not certs):
            self.problem(
                rel,
                "kubeconfig",
                f"{len(certs)} client certificates but {len(keys)} client keys",
            )
        self.kubeconfig_pairs.extend((rel, cert, key) for cert, key in zip(certs[:1], keys[:1]))

    def problem(self, where, checker, finding):
        self.problems.append(f"{where}: {checker}: {finding}")

    def by_content(self, labels):
        """The blocks whose label is in `labels`, grouped by their bytes."""
        groups = defaultdict(list)
        for block in self.blocks:
            if block.label in labels:
                groups[block.pem].append(block)
        return groups


def pem_blocks(data, where, embedded=False):
    return [
        Block(where, m.group(1).decode(), m.group(0) + b"\n", embedded)
        for m in PEM_BLOCK.finditer(data)
    ]


def shown(blocks):
    """Where a content was found: a file of its own when there is one (not a
    kubeconfig that embeds it), and how many copies there are."""
    first = min(blocks, key=lambda b: (b.embedded, b.where))
    extra = len(blocks) - 1
    if not extra:
        return first.where
    return first.where + f" (and {extra} identical {'copy' if extra == 1 else 'copies'})"


def openssl(args, pem):
    """Runs `openssl ARGS` on `pem` (stdin); its error text, or None."""
    run = subprocess.run(
        ["openssl", *args], input=pem, capture_output=True, check=False
    )
    if run.returncode == 0:
        return None
    text = (run.stderr or run.stdout).decode(errors="replace").strip()
    # `80DB9C4EE57F0000:error:...`: the thread id differs from run to run.
    lines = [OPENSSL_THREAD.sub("", line) for line in text.splitlines()[:4]]
    return f"exit {run.returncode}: " + " | ".join(lines)


def spki(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def is_waived(result, description):
    """Kubernetes puts single-label names in its SANs; nothing else is waived."""
    if description.finding.code != DOMAIN_NAME_SYNTAX:
        return False
    if ".subjectAltName." not in result.node.path or result.node.name != "dNSName":
        return False
    return SINGLE_LABEL.fullmatch(str(result.node.pdu)) is not None


class Counts:
    def __init__(self):
        self.certs = self.cert_contents = 0
        self.keys = self.key_contents = 0
        self.public_keys = 0
        self.pairs = 0
        self.waived = set()


def check_certificates(tree, counts, spki_of):
    groups = tree.by_content({"CERTIFICATE"})
    counts.cert_contents = len(groups)
    for pem, blocks in groups.items():
        counts.certs += len(blocks)
        where = shown(blocks)
        try:
            cert = x509.load_pem_x509_certificate(pem)
            spki_of[pem] = spki(cert.public_key())
        except Exception as e:  # noqa: BLE001 - any refusal is the finding
            tree.problem(where, "cryptography load_pem_x509_certificate", repr(e))
        error = openssl(["x509", "-noout"], pem)
        if error:
            tree.problem(where, "openssl x509 -noout", error)
        lint(tree, where, pem, counts)


def lint(tree, where, pem, counts):
    try:
        doc = loader.load_pem_certificate(pem.decode("ascii"), where)
        results = PKIX_VALIDATOR.validate(doc.root)
    except Exception as e:  # noqa: BLE001 - a certificate pkilint cannot decode
        tree.problem(where, "pkilint", f"cannot lint: {e!r}")
        return
    for result in results:
        for description in result.finding_descriptions:
            if description.finding.severity > ValidationFindingSeverity.WARNING:
                continue
            if is_waived(result, description):
                counts.waived.add(str(result.node.pdu))
                continue
            message = f": {description.message}" if description.message else ""
            tree.problem(
                where,
                "pkilint",
                f"{description.finding.severity.name} {description.finding.code}"
                f" at {result.node.path}{message}",
            )


def check_private_keys(tree, counts, spki_of):
    groups = tree.by_content(PRIVATE_KEY_LABELS)
    counts.key_contents = len(groups)
    for pem, blocks in groups.items():
        counts.keys += len(blocks)
        where = shown(blocks)
        try:
            key = serialization.load_pem_private_key(pem, password=None)
            spki_of[pem] = spki(key.public_key())
        except Exception as e:  # noqa: BLE001 - any refusal is the finding
            tree.problem(where, "cryptography load_pem_private_key", repr(e))
        error = openssl(["pkey", "-noout"], pem)
        if error:
            tree.problem(where, "openssl pkey -noout", error)


def check_public_keys(tree, counts, spki_of):
    for pem, blocks in tree.by_content({"PUBLIC KEY"}).items():
        counts.public_keys += len(blocks)
        where = shown(blocks)
        try:
            spki_of[pem] = spki(serialization.load_pem_public_key(pem))
        except Exception as e:  # noqa: BLE001 - any refusal is the finding
            tree.problem(where, "cryptography load_pem_public_key", repr(e))
        error = openssl(["pkey", "-pubin", "-noout"], pem)
        if error:
            tree.problem(where, "openssl pkey -pubin -noout", error)


def check_unknown_blocks(tree):
    known = PRIVATE_KEY_LABELS | {"CERTIFICATE", "PUBLIC KEY"}
    for block in tree.blocks:
        if block.label not in known:
            tree.problem(block.where, "pem", f"a {block.label} block, which nothing here checks")


# The PEM label each file role of the inspect document must hold (its first
# such block is the artifact's own, for a certificate file that carries a
# chain).
ROLE_LABELS = {
    "cert": {"CERTIFICATE"},
    "key": PRIVATE_KEY_LABELS,
    "public-key": {"PUBLIC KEY"},
}


def check_pairs(tree, inspect, counts, spki_of):
    """Every key file of an artifact matches every certificate file of it."""
    by_file = defaultdict(list)
    for block in tree.blocks:
        by_file[block.where].append(block)
    listed = {f["path"] for artifact in inspect["artifacts"] for f in artifact.get("files", [])}
    for rel in sorted(tree.pem_files - listed):
        tree.problem(rel, "inspect", "holds keys or certificates, but inspect lists no such file to pair them by")
    for artifact in inspect["artifacts"]:
        held = []
        for f in artifact.get("files", []):
            labels = ROLE_LABELS.get(f["role"])
            if labels is None:
                continue
            block = next((b for b in by_file.get(f["path"], []) if b.label in labels), None)
            if block is None:
                tree.problem(
                    f["path"],
                    "inspect",
                    f"listed as the {f['role']} of {artifact['id']} but holds no {' or '.join(sorted(labels))} block",
                )
                continue
            held.append((f["path"], f["role"], block))
        check_same_key(tree, artifact["id"], held, counts, spki_of)
    for rel, cert, key in tree.kubeconfig_pairs:
        check_same_key(
            tree, f"kubeconfig {rel}", [(cert.where, "cert", cert), (key.where, "key", key)], counts, spki_of
        )


def check_same_key(tree, what, held, counts, spki_of):
    # A file that did not load is a problem already; compare the rest.
    readable = [(path, role, spki_of[b.pem]) for path, role, b in held if b.pem in spki_of]
    if len(readable) < 2 or {role for _, role, _ in readable} == {"cert"}:
        return
    first_path, first_role, first = readable[0]
    for path, role, key in readable[1:]:
        if key != first:
            tree.problem(
                path,
                "key match",
                f"the {role} of {what} holds another public key than its {first_role} {first_path}",
            )
    counts.pairs += 1


def main(argv):
    if len(argv) != 3:
        print("usage: check_tree.py DIR INSPECT_JSON", file=sys.stderr)
        return 2
    root, inspect_path = argv[1], argv[2]
    if not os.path.isdir(root):
        print(f"check_tree.py: {root} is not a directory", file=sys.stderr)
        return 2
    if inspect_path == "-":
        inspect = json.load(sys.stdin)
    else:
        with open(inspect_path, encoding="utf-8") as f:
            inspect = json.load(f)

    tree = Tree(root)
    counts = Counts()
    spki_of = {}
    check_certificates(tree, counts, spki_of)
    check_private_keys(tree, counts, spki_of)
    check_public_keys(tree, counts, spki_of)
    check_unknown_blocks(tree)
    check_pairs(tree, inspect, counts, spki_of)

    for problem in tree.problems:
        print(problem)
    waived = ", ".join(sorted(counts.waived)) or "none"
    print(
        f"check_tree.py: {root}: {counts.certs} certificates ({counts.cert_contents} distinct)"
        f" linted by pkilint and read by cryptography and openssl x509;"
        f" {counts.keys} private keys ({counts.key_contents} distinct) and {counts.public_keys} public keys"
        f" read by cryptography and openssl pkey; {counts.pairs} artifacts and kubeconfigs"
        f" checked for matching keys; single-label DNS names waived: {waived};"
        f" {len(tree.problems)} problem(s)"
    )
    return 1 if tree.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
