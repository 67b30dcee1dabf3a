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
# browser test (crates/kura/tests/browser.rs); testssl.sh scans `kura serve`
# (crates/kura/tests/testssl.rs).
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v pk12util >/dev/null 2>&1 || missing+=(libnss3-tools)
command -v testssl >/dev/null 2>&1 || missing+=(testssl.sh)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
openssl version
chromium --version
dpkg-query -W -f='testssl.sh ${Version}\n' testssl.sh
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
    rm -rf "$pgdir" ${corpus:+"$corpus"}
}
trap cleanup EXIT
export KURA_TEST_POSTGRES="postgres://kura@127.0.0.1:$pgport/postgres"
export KURA_TEST_REQUIRE_POSTGRES=1
"$pgbin/../bin/postgres" --version 2>/dev/null || true
echo "PostgreSQL on 127.0.0.1:$pgport"

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
