#!/bin/sh
# Release build of f2b with the functions the server runs laid out together
# (see docs/arch/server-perf.md, "Symbol ordering"): builds, derives the order
# with callgrind (bench/server/symbol_order.py), relinks the same objects with
# lld's --symbol-ordering-file. Idle RSS of the bench server: ~11.5 -> ~8.5 MiB.
#
# Usage: bench/server/release-ordered.sh   (honours CARGO_TARGET_DIR)
# Needs: valgrind, python3, lld as the linker (Rust's default on x86_64 Linux).
set -eu
cd "$(dirname "$0")/../.."
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
cargo build --release -p f2b-cli
python3 bench/server/symbol_order.py --f2b "$target/release/f2b" --out "$target/f2b.order"
cargo rustc --release -p f2b-cli --bin f2b -- \
    -C link-arg=-Wl,--symbol-ordering-file="$target/f2b.order" \
    -C link-arg=-Wl,--no-warn-symbol-ordering
echo "ordered release binary: $target/release/f2b"
