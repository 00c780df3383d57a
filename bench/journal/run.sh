#!/bin/sh
# Journal reader throughput: 1M entries written by systemd-journal-remote,
# read through f2b-journal (all entries, then with the sshd journalmatch).
# Needs Debian packages libsystemd-dev and systemd-journal-remote.
# Usage: bench/journal/run.sh [N]   (F2B_JOURNAL_BENCH_DIR=/some/dir keeps the journal files)
set -eu
cd "$(dirname "$0")/../.."
exec cargo run --release -q -p f2b-journal --example journal_throughput -- "${1:-1000000}"
