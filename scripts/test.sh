#!/usr/bin/env bash
# Runs every check and test of Kura on this machine, installing first whatever the tests need.
# This is the README's test command; CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
cargo --version
rustc --version

step "system tools the tests use"
# openssl checks certificates and PKCS#12 files issued by Kura's CA (crates/pki);
# PostgreSQL is the second backend of the store of record (crates/db): the whole suite runs
# against both; chromium, chromium-driver and libnss3-tools (certutil, pk12util) run the
# browser test (crates/kura/tests/browser.rs), fonts-noto-cjk draws its Japanese; testssl.sh scans `kura serve`
# (crates/kura/tests/testssl.rs); clamav-daemon is the airlock's malware scanner, which the tests
# start with signatures they generate (crates/scan/tests/support/clamd.rs).
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v pk12util >/dev/null 2>&1 || missing+=(libnss3-tools)
command -v testssl >/dev/null 2>&1 || missing+=(testssl.sh)
[ -x /usr/sbin/clamd ] || command -v clamd >/dev/null 2>&1 || missing+=(clamav-daemon)
# Japanese glyphs for the browser (its screenshots of the portal), not boxes.
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
openssl version
chromium --version
dpkg-query -W -f='testssl.sh ${Version}\n' testssl.sh
dpkg-query -W -f='clamav-daemon ${Version}\n' clamav-daemon
# The browser test needs Chromium to choose its client certificate without a dialog. Chromium
# on Linux reads that only from a managed policy; this one covers loopback and certificates
# issued by a CA named "Kura browser test CA" (the test's own), nothing else.
policy=/etc/chromium/policies/managed/kura-tests.json
want='{"AutoSelectCertificateForUrls": ["{\"pattern\":\"https://127.0.0.1:*\",\"filter\":{\"ISSUER\":{\"CN\":\"Kura browser test CA\"}}}"]}'
if [ "$(cat "$policy" 2>/dev/null)" != "$want" ]; then
    $SUDO mkdir -p "$(dirname "$policy")"
    printf '%s\n' "$want" | $SUDO tee "$policy" >/dev/null
    echo "wrote $policy"
fi

step "PostgreSQL server for the tests (a throwaway cluster on loopback)"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
pgdir="$(mktemp -d)"
pgport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root: run it as the postgres system user.
    chown postgres "$pgdir"
    as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -U kura --auth=trust -E UTF8 --locale=C >"$pgdir/initdb.log"
# fsync off: this cluster lives for one test run; durability is tested on SQLite and in the
# ledger's crash test.
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w \
    -o "-k $pgdir -p $pgport -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" start
cleanup() {
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pgdir" ${corpus:+"$corpus"} ${advisory_dbs:+"$advisory_dbs"} ${planted:+"$planted"}
}
trap cleanup EXIT
export KURA_TEST_POSTGRES="postgres://kura@127.0.0.1:$pgport/postgres"
export KURA_TEST_REQUIRE_POSTGRES=1
"$pgbin/../bin/postgres" --version 2>/dev/null || true
echo "PostgreSQL on 127.0.0.1:$pgport"

step "dependencies (cargo deny: advisories, licences, duplicates, sources; cargo machete: unused)"
# Pinned tools, installed once into a cache outside the clone (like the build cache).
tools="${KURA_TOOLS:-${HOME}/.cache/kura/tools}"
export PATH="$tools/bin:$PATH"
if [ "$(cargo-deny --version 2>/dev/null)" != "cargo-deny 0.20.2" ]; then
    cargo install --locked --root "$tools" cargo-deny --version 0.20.2
fi
if ! cargo-machete --version 2>/dev/null | grep -q '0.9.2'; then
    cargo install --locked --root "$tools" cargo-machete --version 0.9.2
fi
# The advisory database is a vendored snapshot (CI reaches no git host): it is made a git
# repository where cargo deny looks for it, dated as the snapshot.
advisory_dbs="$(mktemp -d)"
export KURA_ADVISORY_DBS="$advisory_dbs"
make_advisory_db() { # $1: directory to create from .ci/advisory-db
    mkdir -p "$1"
    cp -r .ci/advisory-db/. "$1/"
    local when
    when="$(awk '{print $3}' .ci/advisory-db/SNAPSHOT)"
    (cd "$1" && git init -q && git add -A &&
        GIT_AUTHOR_DATE="$when" GIT_COMMITTER_DATE="$when" \
            git -c user.name=kura -c user.email=kura@localhost commit -qm "advisory-db snapshot")
    # cargo deny dates the database by its HEAD commit or .git/HEAD, whichever is newer: both
    # carry the snapshot's date, so `maximum-db-staleness` (deny.toml) measures its real age.
    touch -d "$when" "$1/.git/HEAD"
}
make_advisory_db "$advisory_dbs/advisory-db-3157b0e258782691"
echo "advisory database: $(cat .ci/advisory-db/SNAPSHOT)"
# Every crate of Cargo.lock that comes from a registry was looked up when the snapshot was
# taken: a crate added since has no advisories in it and would pass unchecked. (Kura's own
# crates have no `source`: advisories are about published crates.)
registry_crates() {
    awk '/^\[\[package\]\]/ { name = "" } /^name = / { name = $3 } /^source = "registry/ { gsub(/"/, "", name); print name }' Cargo.lock | sort -u
}
unlisted="$(comm -23 <(registry_crates) <(sort -u .ci/advisory-db/CRATES))"
if [ -n "$unlisted" ]; then
    echo "FAILED: crates not looked up in the advisory snapshot: $(echo $unlisted)"
    echo "run scripts/update-advisory-db.sh with a current checkout of RustSec's advisory-db"
    exit 1
fi
# cargo deny reads the dependency graph offline: the registry's crates must be here first.
cargo fetch --locked --quiet
cargo deny --offline --locked check
# The check can fail: an advisory planted for a crate in the tree (hex, every version; not the
# placeholder ID RUSTSEC-0000-0000, which cargo deny skips) must
# make it refuse.
planted="$(mktemp -d)"
make_advisory_db "$planted/advisory-db-3157b0e258782691"
mkdir -p "$planted/advisory-db-3157b0e258782691/crates/hex"
cat > "$planted/advisory-db-3157b0e258782691/crates/hex/RUSTSEC-9999-0001.md" <<'ADVISORY'
```toml
[advisory]
id = "RUSTSEC-9999-0001"
package = "hex"
date = "2026-01-01"

[versions]
patched = []
```

# Planted by Kura's test script

Not a real advisory: it proves that the advisory check can fail.
ADVISORY
(cd "$planted/advisory-db-3157b0e258782691" && git add -A && git -c user.name=kura -c user.email=kura@localhost commit -qm planted)
if KURA_ADVISORY_DBS="$planted" cargo deny --offline --locked check advisories >"$planted/out.log" 2>&1; then
    cat "$planted/out.log"
    echo "FAILED: a planted advisory was not reported"
    exit 1
fi
# A finding, not a parse failure that merely names the file.
grep -q 'error\[vulnerability\]' "$planted/out.log" && grep -q 'ID: RUSTSEC-9999-0001' "$planted/out.log" ||
    { cat "$planted/out.log"; echo "FAILED: the planted advisory is not reported as a vulnerability"; exit 1; }
echo "a planted advisory is refused: ok"
rm -rf "$planted"
cargo machete

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (debug profile)"
cargo test --workspace --locked

step "fuzz (cargo fuzz: the ledger's parsers of untrusted input, ${KURA_FUZZ_SECONDS:-20} s per target)"
# libFuzzer needs a nightly compiler's -Z flags: the installed nightly if there is one,
# otherwise the pinned stable compiler with RUSTC_BOOTSTRAP (same flags, no download).
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz() { cargo +nightly fuzz "$@"; }
else
    fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
fi
corpus="$(mktemp -d)"
fuzz build -O
for target in $(fuzz list); do
    mkdir -p "$corpus/$target"
    # New inputs go to the scratch corpus; the committed seeds are read only. A crash fails
    # the run and leaves the input under fuzz/artifacts/.
    log="$corpus/$target.log"
    if ! fuzz run -O "$target" "$corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="${KURA_FUZZ_SECONDS:-20}" >"$log" 2>&1; then
        tail -n 80 "$log"
        echo "FAILED: fuzz target $target (see fuzz/artifacts/$target/)"
        exit 1
    fi
    echo "$target: $(grep -E '^Done' "$log")"
done

step "all checks passed"
