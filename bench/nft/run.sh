#!/usr/bin/env bash
# Benchmark of f2b's native nftables backend against the stock way (one
# `nft add element` process per ban, as fail2ban's nftables action does).
# Everything runs inside throw-away network namespaces (never the host
# ruleset). Needs root, iproute2, nftables (nft + libnftables1).
#
#   bench/nft/run.sh [--big N] [--trials N] [--fork-trials N] [--flood-secs N] [--shards K]
#
# Output: one "name value unit" line per measurement, see docs/arch/nft.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
if [ "$(id -u)" != 0 ]; then
    echo "bench/nft/run.sh: must run as root (network namespaces, nf_tables)" >&2
    exit 1
fi
for tool in ip nft; do
    command -v "$tool" >/dev/null || { echo "bench/nft/run.sh: $tool missing (apt-get install iproute2 nftables)" >&2; exit 1; }
done
cargo build --release -q -p f2b-nft --example nft_bench
echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$CARGO_TARGET_DIR/release/examples/nft_bench" "$@" &
pid=$!
# The binary deletes its namespaces itself; if it is killed, do it here.
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^f2bt-bench-(srv|cli)-$pid-" || true); do
        ip netns del "$ns" || true
    done
}
trap cleanup INT TERM
rc=0
wait "$pid" || rc=$?
trap - INT TERM
cleanup
exit "$rc"
