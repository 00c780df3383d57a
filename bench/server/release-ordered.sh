#!/bin/sh
# Release build of f2b with the functions the server runs laid out together
# (see docs/arch/server-perf.md, "Symbol ordering"): builds, derives the order
# with callgrind (bench/server/symbol_order.py), relinks with lld's
# --symbol-ordering-file. That relink recompiles f2b-cli, which renames ~4 % of
# the LTO-promoted locals (`.llvm.<hash>`), so the names are remapped against
# the relinked binary and it is linked once more (names are stable between
# the two `cargo rustc` links). Idle RSS of the bench server: ~11.5 -> ~8.6 MiB.
#
# Usage: bench/server/release-ordered.sh   (honours CARGO_TARGET_DIR)
# Needs: valgrind, python3, lld as the linker (Rust's default on x86_64 Linux).
set -eu
cd "$(dirname "$0")/../.."
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
cargo build --release -p f2b-cli
python3 bench/server/symbol_order.py --f2b "$target/release/f2b" --out "$target/f2b.order"
relink() {
    cargo rustc --release -p f2b-cli --bin f2b -- \
        -C link-arg=-Wl,--symbol-ordering-file="$1" \
        -C link-arg=-Wl,--no-warn-symbol-ordering
}
relink "$target/f2b.order"
python3 bench/server/symbol_order.py --f2b "$target/release/f2b" \
    --remap "$target/f2b.order" --out "$target/f2b.order2"
relink "$target/f2b.order2"
echo "ordered release binary: $target/release/f2b"
