#!/usr/bin/env bash
# Runs every test, including the ones against real consumers of the generated
# PKI (a three-member etcd cluster, etcdctl, kubectl, openssl), which plain
# `cargo test` leaves out as ignored.
#
# On a Debian machine it installs what those tests need when it is missing:
# etcd-server and etcd-client (etcd 3.4), openssl, and kubernetes-client when
# there is no kubectl. As another user than root it prints what to install
# and stops.
#
# Usage: tests/run.sh [extra arguments for the test binaries]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
for tool in etcd etcdctl openssl kubectl; do
    have "$tool" || missing+=("$tool")
done

if ((${#missing[@]} > 0)); then
    packages=(etcd-server etcd-client openssl)
    have kubectl || packages+=(kubernetes-client)
    echo "tests/run.sh: missing ${missing[*]} (Debian packages: ${packages[*]})" >&2
    if [[ $(id -u) -ne 0 ]] || ! have apt-get; then
        echo "tests/run.sh: cannot install packages here (not root, or no apt-get). Install them, then run this again:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
        echo "(kubectl may come from anywhere; etcd and etcdctl must be 3.4 or later)" >&2
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
        have "$tool" || still+=("$tool")
    done
    if ((${#still[@]} > 0)); then
        echo "tests/run.sh: still missing after installing: ${still[*]}" >&2
        exit 1
    fi
fi

echo "tests/run.sh: etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p'), $(openssl version), kubectl $(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p')" >&2

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

# Style is part of the suite: formatting and every clippy lint, denied.
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings

# --no-fail-fast: report every failing test binary, not only the first.
exec cargo test --locked --all-targets --no-fail-fast -- --include-ignored "$@"
