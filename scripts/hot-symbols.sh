#!/usr/bin/env bash
# Regenerate crates/inlet/link/hot-symbols.txt: the functions the release binary runs, as
# valgrind's callgrind records them, in the order the linker is to place them
# (crates/inlet/build.rs). First those of a first sync of 100,000 users into DuckDB, the
# command whose memory matters most, then those the following commands add: a first sync of
# 1,000,000 users (a longer sync runs functions a short one never does, which would otherwise
# lie scattered, a page of code each), a sync with nothing new, `state show`, a first and a
# second sync into PostgreSQL, `demo`. So a DuckDB sync maps a few contiguous megabytes of
# code instead of pages all over the binary, and a long one no more than a short one.
#
# Run it after upgrading DuckDB or the Rust toolchain, or after large changes: symbols the
# list names and the build lacks are skipped, so a stale list costs memory, not correctness.
# Needs valgrind; the PostgreSQL syncs run when 127.0.0.1:5432 answers. About 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PORT:-18089}"
list=crates/inlet/link/hot-symbols.txt

command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }
cargo build --release --locked -p inlet
# Absolute: the traces run in the work directory.
bin="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/inlet"

work="$(mktemp -d)"
"$bin" playground --quiet --users 100000 --page-size-limit 1000 --port "$port" >/dev/null &
playground=$!
"$bin" playground --quiet --users 1000000 --page-size-limit 1000 --port "$((port + 1))" >/dev/null &
large=$!
trap 'kill "$playground" "$large" 2>/dev/null; rm -rf "$work"' EXIT
cat >"$work/configuration.json" <<EOF
{"strategy": "offset", "base_url": "http://127.0.0.1:$port/pagination/offset", "page_size": 1000, "concurrency": 4}
EOF
cat >"$work/large.json" <<EOF
{"strategy": "offset", "base_url": "http://127.0.0.1:$((port + 1))/pagination/offset", "page_size": 1000, "concurrency": 4}
EOF
for config in configuration large; do
    answered=
    for _ in $(seq 1 50); do
        if "$bin" check --config "$work/$config.json" --warehouse "$work/check.db" >/dev/null 2>&1; then
            answered=yes
            break
        fi
        sleep 0.2
    done
    [ -n "$answered" ] || { echo "no playground answered for $config.json (ports $port and $((port + 1)); set PORT)" >&2; exit 1; }
done

traces=0
trace() {
    echo "traced: inlet $*"
    traces=$((traces + 1))
    (cd "$work" && valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$traces.callgrind" \
        "$bin" "$@" >/dev/null 2>"$work/valgrind.log") ||
        { cat "$work/valgrind.log" >&2; exit 1; }
}
trace sync --config configuration.json --warehouse warehouse.db
trace sync --config large.json --warehouse large.db
trace sync --config configuration.json --warehouse warehouse.db
trace state show --config configuration.json --warehouse warehouse.db
drop_schema() {
    PGOPTIONS='--client-min-messages=warning' psql -h 127.0.0.1 -U postgres -d test -q \
        -c 'DROP SCHEMA IF EXISTS inlet_hot_symbols CASCADE'
}
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    drop_schema
    trace sync --config configuration.json --destination postgres://postgres@127.0.0.1:5432/test \
        --schema inlet_hot_symbols
    trace sync --config configuration.json --destination postgres://postgres@127.0.0.1:5432/test \
        --schema inlet_hot_symbols
    drop_schema
fi
trace demo --warehouse demo.db

# `fn=(id) name` and `cfn=(id) name` name a function the first time it appears in a file;
# callgrind marks recursion levels with a suffix ('2). Functions of shared libraries (libc,
# libstdc++) are not the binary's to place, and are left out.
nm --defined-only "$bin" | awk '{ print $3 }' | LC_ALL=C sort -u >"$work/defined"
: >"$list"
for n in $(seq 1 "$traces"); do
    sed -nE "s/^c?fn=\([0-9]+\) (.*)$/\1/p" "$work/$n.callgrind" | sed -E "s/'[0-9]+$//" |
        LC_ALL=C sort -u | LC_ALL=C comm -12 - "$work/defined" >"$work/ran"
    LC_ALL=C sort "$list" | LC_ALL=C comm -23 "$work/ran" - >"$work/new"
    cat "$work/new" >>"$list"
done
echo "$list: $(wc -l <"$list") functions"
