#!/usr/bin/env bash
# Ban latency end to end: a failure line written to the jail's log file ->
# the address present in the kernel's nftables set, observed by a netlink
# socket subscribed to nf_tables notifications (no polling, no process). Compares f2b with
# `banaction = nftables-multiport` (native f2b-nft backend once wired into the
# server, else the stock shell action) and the stock Python fail2ban with its
# stock nftables-multiport shell action, in the same run and the same
# throw-away network namespace (never the host ruleset).
#
#   bench/e2e/latency.sh [--trials N] [--only f2b|python] [--rt]
#
# --rt runs both servers and the listener under `chrt -f 50` (SCHED_FIFO), to
# separate the code path from CPU contention on a loaded machine.
#
# Env: F2B_BIN=path to an f2b binary (default: release build of f2b-cli).
# Output: one "impl metric value unit" line per measurement (see docs/arch/e2e.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/e2e
trials=200
only=""
rt=()
while [ $# -gt 0 ]; do
    case "$1" in
        --trials) trials="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        --rt) rt=(chrt -f 50); shift ;;
        *) echo "usage: $0 [--trials N] [--only f2b|python] [--rt]" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "$0: must run as root (network namespaces, nf_tables)" >&2; exit 1
fi
for tool in ip nft /usr/bin/python3 /usr/bin/fail2ban-client; do
    command -v "$tool" >/dev/null || { echo "$0: $tool missing (scripts/install-deps)" >&2; exit 1; }
done
[ -d /etc/fail2ban ] || { echo "$0: /etc/fail2ban missing (Debian package fail2ban)" >&2; exit 1; }
if [ -z "${F2B_BIN:-}" ] && [ "$only" != python ]; then
    : "${CARGO_TARGET_DIR:=target}"; export CARGO_TARGET_DIR
    cargo build --release -q -p f2b-cli
    F2B_BIN="$CARGO_TARGET_DIR/release/f2b"
fi

ns="f2bt-e2e-lat-$$"
work="$(mktemp -d /tmp/f2b-e2e-lat.XXXXXX)"
cleanup() {
    for _ in 1 2 3; do
        pids="$(ip netns pids "$ns" 2>/dev/null || true)"
        [ -z "$pids" ] && break
        kill -9 $pids 2>/dev/null || true
        sleep 0.1
    done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns" || { echo "$0: the kernel refused a network namespace" >&2; exit 1; }
ip -n "$ns" link set lo up
ip netns exec "$ns" nft list ruleset >/dev/null || { echo "$0: nf_tables unusable in the namespace" >&2; exit 1; }

echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg), trials $trials${rt:+, SCHED_FIFO}"
for impl in f2b python; do
    [ -n "$only" ] && [ "$only" != "$impl" ] && continue
    dir="$work/$impl"
    mkdir -p "$dir"
    cp -a /etc/fail2ban/. "$dir/"
    cat > "$dir/fail2ban.local" <<EOT
[Definition]
loglevel = INFO
logtarget = $dir/server.log
socket = $dir/server.sock
pidfile = $dir/server.pid
dbfile = $dir/db.sqlite3
EOT
    cat > "$dir/jail.local" <<EOT
[sshd]
enabled = true
backend = auto
logpath = $dir/auth.log
maxretry = 1
findtime = 600
bantime = 3600
banaction = nftables-multiport
EOT
    : > "$dir/auth.log"
    if [ "$impl" = f2b ]; then
        ip netns exec "$ns" "${rt[@]}" "$F2B_BIN" server -f -x -c "$dir" start </dev/null >"$dir/stderr.txt" 2>&1 &
    else
        ip netns exec "$ns" "${rt[@]}" /usr/bin/fail2ban-client -c "$dir" -x -f start </dev/null >"$dir/stderr.txt" 2>&1 &
    fi
    srvpid=$!
    if ! ip netns exec "$ns" "${rt[@]}" /usr/bin/python3 "$here/latency.py" --ns "$ns" --dir "$dir" --impl "$impl" --trials "$trials"; then
        echo "$impl: FAILED; server log:" >&2; tail -20 "$dir/server.log" "$dir/stderr.txt" >&2 || true
        kill "$srvpid" 2>/dev/null || true
        exit 1
    fi
    /usr/bin/fail2ban-client -c "$dir" stop >/dev/null 2>&1 || kill "$srvpid" 2>/dev/null || true
    wait "$srvpid" 2>/dev/null || true
    ip netns exec "$ns" nft flush ruleset
done
