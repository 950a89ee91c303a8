#!/usr/bin/env bash
# Builds certplan's Debian package with cargo-deb, from the
# [package.metadata.deb] table of Cargo.toml, and prints its path
# (target/debian/certplan_VERSION_ARCH.deb unless CARGO_TARGET_DIR says
# otherwise). Needs cargo-deb (`cargo install cargo-deb --locked`), and
# dpkg-dev for the package's Depends line.
#
# Usage: bash packaging/deb.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The cargo that runs this script, when one does; the one on PATH otherwise.
cargo=${CARGO:-cargo}

# Before the long build, not after it.
if ! "$cargo" deb --version >/dev/null 2>&1; then
    echo "packaging/deb.sh: cargo-deb is not installed: cargo install cargo-deb --locked" >&2
    exit 1
fi

"$cargo" build --release --locked

# Where that build put the binary: target/ unless CARGO_TARGET_DIR or a
# cargo configuration moves it.
target_dir=$("$cargo" metadata --format-version 1 --no-deps --locked |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
if [[ -z $target_dir ]]; then
    echo "packaging/deb.sh: cargo metadata names no target directory" >&2
    exit 1
fi
certplan="$target_dir/release/certplan"

# The man pages and completions come from the binary being packaged, so
# they describe its flags. The assets of Cargo.toml name this directory
# relative to the checkout, wherever the target directory is; it is made
# afresh so a page of a removed subcommand cannot ship.
assets=target/assets
rm -rf "$assets"
mkdir -p "$assets/completions"
"$certplan" man --dir "$assets/man"
"$certplan" completions bash >"$assets/completions/certplan.bash"
"$certplan" completions zsh >"$assets/completions/_certplan"
"$certplan" completions fish >"$assets/completions/certplan.fish"

# --no-build: package the binary built above, with the flags above.
# --strip: cargo-deb would keep the line tables that [profile.release]
# asks for (a 40 MB binary); a Debian package ships its binaries stripped
# (8 MB). cargo-deb prints the package's path on stdout, and nothing else.
"$cargo" deb --no-build --locked --strip
