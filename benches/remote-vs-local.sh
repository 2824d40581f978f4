#!/usr/bin/env bash
# remote-vs-local.sh — a remote build against an `xbuild worker` on loopback, as ratios to the
# same build run locally, measured in one run: the standard context (../shared/bench/gen-context:
# 20,000 files, 256 MiB, 10 stages fanning into one; FILES/MIB shrink it), cold (empty roots)
# and no-op (nothing changed; measured twice). The remote build brings the image back into the
# client's store, as the local one writes it there. A remote no-op is one round trip: the client
# scans its context (through its stat cache) and names it by its manifest's digest; the worker
# holds that layout and the context checksums of the cold build, so it sends nothing back but
# the image offer (no manifest, no file, no walk of its copy). The first local no-op is slower
# than the next (it reads again files whose stat cache entries were too recent to keep, the
# generator having just written them); `again` compares settled no-ops. Needs root and
# busybox-static.
# XB picks the binary (default: a debug build of this tree).
set -euo pipefail
cd "$(dirname "$0")/.."
gen=${GEN_CONTEXT:-../shared/bench/gen-context}
work=$(mktemp -d /tmp/xbuild-bench-XXXXXX)
worker_pid=
cleanup() {
  # (`wait` on the killed worker fails; under `set -e` that must not skip the removal.)
  if [ -n "$worker_pid" ]; then
    kill "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${XB:-}" ]; then
  cargo build -q -p xbuild-cli
  XB=target/debug/xbuild
fi
"$gen" "$work/ctx" ${FILES:+--files "$FILES"} ${MIB:+--mib "$MIB"} >/dev/null
scripts/mkrootfs "$work/rootfs.tar"
for r in local worker; do
  "$XB" --root "$work/$r" import "$work/rootfs.tar" busybox:local >/dev/null
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$XB" --root "$work/worker" worker --listen "127.0.0.1:$port" 2>"$work/worker.log" &
worker_pid=$!
for _ in $(seq 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

# seconds CMD... — wall time of one run of CMD, which must succeed.
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}
local_build() { "$XB" --root "$work/local" build -q -t bench:1 "$work/ctx"; }
remote_build() { "$XB" --root "$work/client" build -q -t bench:1 --remote "127.0.0.1:$port" "$work/ctx"; }
lc=$(seconds local_build)
ln=$(seconds local_build)
ln2=$(seconds local_build)
rc=$(seconds remote_build)
rn=$(seconds remote_build)
rn2=$(seconds remote_build)
python3 - "$lc" "$ln" "$ln2" "$rc" "$rn" "$rn2" <<'PY'
import sys
lc, ln, ln2, rc, rn, rn2 = map(float, sys.argv[1:])
print(f"cold:  local {lc:.2f}s, remote {rc:.2f}s, remote/local {rc/lc:.2f}x")
print(f"no-op: local {ln:.2f}s, remote {rn:.2f}s, remote/local {rn/ln:.2f}x (goal: within 2x)")
print(f"again: local {ln2:.2f}s, remote {rn2:.2f}s, remote/local {rn2/ln2:.2f}x")
PY
