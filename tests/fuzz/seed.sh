#!/bin/sh
# Copies the seed corpus (tests/fuzz/seeds/, the example plans and every
# fixture plan) into tests/fuzz/corpus/plan_compile/, the working corpus that
# `cargo fuzz run` grows and git ignores.
set -eu
cd "$(dirname "$0")/../.."
corpus=tests/fuzz/corpus/plan_compile
mkdir -p "$corpus"
cp tests/fuzz/seeds/* "$corpus"/ 2>/dev/null || true
for plan in plans/*.toml; do
    cp "$plan" "$corpus/plans-$(basename "$plan")"
done
if [ -d tests/fixtures ]; then
    find tests/fixtures -name '*.toml' | while read -r plan; do
        cp "$plan" "$corpus/fixture-$(echo "$plan" | sed 's|^tests/fixtures/||; s|/|-|g')"
    done
fi
echo "seeded $(ls "$corpus" | wc -l) inputs into $corpus"
