#!/usr/bin/env bash
# Restore benchmark of f2b-store: writes N active bans (default 1,000,000) into a
# fail2ban-format database, then times opening it and reading every active ban
# back (what a restart restores). Prints wall and CPU seconds per step.
#   bench/store/run.sh [N] [MATCHES_PER_BAN] [DIR]
# Target (issue 5): <= 2 s to read 1M active bans.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"
MATCHES="${2:-2}"
DIR="${3:-}"
cargo build --release -q -p f2b-store --example restore_bench
BIN="${CARGO_TARGET_DIR:-target}/release/examples/restore_bench"
if [ -n "$DIR" ]; then
  exec "$BIN" "$N" "$MATCHES" "$DIR"
else
  exec "$BIN" "$N" "$MATCHES"
fi
