#!/bin/sh
# Journal entry -> ban action latency through a real systemd-journald (f2b vs Python
# fail2ban-server, backend = systemd). journald runs in a private mount namespace with tmpfs
# over /run/systemd, /run/log and /var/log/journal, so the host's journal (if any) is untouched.
# Needs root. Usage: bench/journal/latency.sh [--f2b PATH] [--trials 200] [--only f2b|python]
set -eu
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "needs root (mount namespace)" >&2; exit 1; }
exec unshare -m --propagation private -- /bin/sh -c '
  set -eu
  for d in /run/systemd /run/log /var/log/journal; do mount -t tmpfs tmpfs "$d"; done
  F2B_JOURNAL_NS=1 exec python3 bench/journal/latency.py "$@"' latency "$@"
