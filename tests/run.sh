#!/usr/bin/env bash
# Runs every test, including the ones against real consumers of the generated
# PKI (a three-member etcd cluster, etcdctl, kubectl, openssl), which plain
# `cargo test` leaves out as ignored.
#
# On a Debian machine it installs what those tests need when it is missing:
# etcd-server and etcd-client (etcd 3.4), openssl, kubernetes-client when
# there is no kubectl, python3-pip when python3 has no pip, dpkg-dev when
# there is no dpkg-shlibdeps, and age when there is no age command (it
# decrypts the encrypted trees of tests/secrets.rs), and libarchive-tools
# when there is no bsdtar (the documented install reads export's tar stream
# with it), and golang-cfssl when there is no cfssl (tests/adopt.rs builds a
# hard-way tree with it to adopt). As another user than
# root it prints what to install and stops. With pip it installs the Python
# checkers (pkilint, cryptography, prometheus-client) and pre-commit, pinned;
# with cargo, mdbook and cargo-deb, pinned.
#
# Usage: tests/run.sh [extra arguments for the test binaries]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

have() { command -v "$1" >/dev/null 2>&1; }
# A command, or `pip`: python3 with its pip module.
have_tool() {
    if [[ $1 == pip ]]; then
        have python3 && python3 -m pip --version >/dev/null 2>&1
    else
        have "$1"
    fi
}

missing=()
for tool in etcd etcdctl openssl kubectl pip dpkg-shlibdeps age bsdtar cfssl; do
    have_tool "$tool" || missing+=("$tool")
done

if ((${#missing[@]} > 0)); then
    packages=(etcd-server etcd-client openssl)
    have kubectl || packages+=(kubernetes-client)
    have_tool pip || packages+=(python3-pip)
    have dpkg-shlibdeps || packages+=(dpkg-dev)
    have age || packages+=(age)
    have bsdtar || packages+=(libarchive-tools)
    have cfssl || packages+=(golang-cfssl)
    echo "tests/run.sh: missing ${missing[*]} (Debian packages: ${packages[*]})" >&2
    if [[ $(id -u) -ne 0 ]] || ! have apt-get; then
        echo "tests/run.sh: cannot install packages here (not root, or no apt-get). Install them, then run this again:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
        echo "(kubectl may come from anywhere; etcd and etcdctl must be 3.4 or later; python3 must be 3.10 or later)" >&2
        exit 1
    fi

    # Keep the package's etcd service from starting: the tests start their
    # own members on free ports and want no system etcd holding 2379/2380.
    made_policy=no
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        made_policy=yes
    fi
    cleanup_policy() { [[ $made_policy == yes ]] && rm -f /usr/sbin/policy-rc.d; return 0; }
    trap cleanup_policy EXIT

    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"

    cleanup_policy
    trap - EXIT

    # If a system etcd got started anyway, stop it and keep it from coming
    # back at boot.
    if [[ -d /run/systemd/system ]] && have systemctl; then
        systemctl disable --now etcd.service >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/etcd ]]; then
        if /etc/init.d/etcd status >/dev/null 2>&1; then
            /etc/init.d/etcd stop || true
        fi
        have update-rc.d && update-rc.d etcd disable >/dev/null 2>&1 || true
    fi

    still=()
    for tool in "${missing[@]}"; do
        have_tool "$tool" || still+=("$tool")
    done
    if ((${#still[@]} > 0)); then
        echo "tests/run.sh: still missing after installing: ${still[*]}" >&2
        exit 1
    fi
fi

# The independent checkers read certplan's output with code certplan did not
# write: tests/checkers/check_tree.py every certificate and key, with
# pkilint's RFC 5280 linter and Python's cryptography; parse_metrics.py the
# metrics of `verify --format prometheus`, with prometheus_client's parser;
# pre-commit runs the hook of .pre-commit-hooks.yaml (tests/pre_commit_hook.rs).
# All from PyPI, pinned so every machine checks by the same rules. pip runs
# only when the pinned versions do not import yet, so later runs skip it.
# PIP_BREAK_SYSTEM_PACKAGES lets pip install beside Debian's own Python
# packages (PEP 668); pip before 23.0.1 ignores it.
pkilint_version=0.13.3
cryptography_version=50.0.2
prometheus_client_version=0.26.0
pre_commit_version=4.7.0
checkers_ready() {
    python3 - "$pkilint_version" "$cryptography_version" "$prometheus_client_version" "$pre_commit_version" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version

import cryptography  # noqa: F401 - importable, not only recorded
import pkilint  # noqa: F401
import prometheus_client.parser  # noqa: F401
import pre_commit  # noqa: F401

installed = (version("pkilint"), version("cryptography"), version("prometheus-client"), version("pre-commit"))
sys.exit(installed != tuple(sys.argv[1:]))
EOF
}
checkers="pkilint $pkilint_version, cryptography $cryptography_version, prometheus-client $prometheus_client_version and pre-commit $pre_commit_version"
if ! checkers_ready; then
    echo "tests/run.sh: installing $checkers with pip" >&2
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet \
        "pkilint==$pkilint_version" "cryptography==$cryptography_version" \
        "prometheus-client==$prometheus_client_version" "pre-commit==$pre_commit_version"
    if ! checkers_ready; then
        echo "tests/run.sh: $checkers do not import after pip install" >&2
        exit 1
    fi
fi

echo "tests/run.sh: etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p'), $(openssl version), kubectl $(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p'), $(python3 --version), age $(age --version), $checkers" >&2

# Build the user guide. The book tests in the suite run its examples, but
# only mdbook notices a page that SUMMARY.md links and nobody wrote
# (create-missing = false makes that an error, not a blank page). mdbook
# comes from crates.io, pinned so every machine renders the same book;
# `cargo install` puts it in ~/.cargo/bin, so only the first run pays for
# the build (about eight minutes on two cores), later runs find it.
mdbook_version=0.5.4
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
[[ :$PATH: == *":$cargo_bin:"* ]] || PATH="$PATH:$cargo_bin"
if ! have mdbook; then
    echo "tests/run.sh: installing mdbook $mdbook_version with cargo (once; several minutes)" >&2
    cargo install mdbook --locked --version "$mdbook_version"
fi
# Outside the repository, so the build leaves nothing to commit.
book_out="${TMPDIR:-/tmp}/certplan-book"
mdbook build book -d "$book_out"
echo "tests/run.sh: $(mdbook --version) built the book into $book_out" >&2

# The Debian package test (tests/debian_package.rs) builds the package with
# cargo-deb, pinned like mdbook and installed the same way: a one-off build
# of a few minutes on the first run, nothing on later ones. (The package's
# Depends line comes from dpkg-shlibdeps, of dpkg-dev, installed above.)
# The test's own release build of certplan is not one-off: about five
# minutes on two cores in a run whose target directory starts empty, as CI's
# does.
cargo_deb_version=3.7.0
if ! have cargo-deb; then
    echo "tests/run.sh: installing cargo-deb $cargo_deb_version with cargo (once; a few minutes)" >&2
    cargo install cargo-deb --locked --version "$cargo_deb_version"
fi

# Style is part of the suite: formatting and every clippy lint, pedantic
# ones included, denied (the few allowed ones are allowed at the crate roots,
# each with its reason).
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings -W clippy::pedantic

# --no-fail-fast: report every failing test binary, not only the first.
exec cargo test --locked --all-targets --no-fail-fast -- --include-ignored "$@"
