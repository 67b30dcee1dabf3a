#!/usr/bin/env bash
# Refreshes the advisory snapshot in .ci/advisory-db from a checkout of the RustSec advisory
# database (https://github.com/RustSec/advisory-db, CC0-1.0), keeping the advisories of the
# crates named in Cargo.lock. Run it where GitHub is reachable, or on any copy of the
# repository, whenever Cargo.lock changes or the snapshot ages:
#
#   git clone https://github.com/RustSec/advisory-db /tmp/advisory-db
#   scripts/update-advisory-db.sh /tmp/advisory-db
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:?usage: scripts/update-advisory-db.sh PATH-TO-advisory-db-CHECKOUT}"
[ -d "$src/crates" ] || { echo "$src has no crates/ directory: not an advisory-db checkout" >&2; exit 1; }
out=.ci/advisory-db
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/crates"
kept=0
# The names looked up: scripts/test.sh refuses a Cargo.lock with a crate not among them.
sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.lock | sort -u > "$tmp/CRATES"
for name in $(cat "$tmp/CRATES"); do
    if [ -d "$src/crates/$name" ]; then
        cp -r "$src/crates/$name" "$tmp/crates/"
        kept=$((kept + 1))
    fi
done
cp "$src/LICENSE.txt" "$tmp/" 2>/dev/null || true
cp "$src/support.toml" "$tmp/" 2>/dev/null || true
commit="$(git -C "$src" log -1 --format=%H 2>/dev/null || echo unknown)"
date="$(git -C "$src" log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "rustsec/advisory-db $commit $date" > "$tmp/SNAPSHOT"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -r "$tmp" "$out"
echo "$out: advisories of $kept crates from $commit ($date)"
