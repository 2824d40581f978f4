#!/usr/bin/env bash
# run_overhead.sh — per-RUN overhead, side by side with Docker's BuildKit, in one run:
# a Dockerfile of 50 `RUN true` steps in one stage, built cold (no cache) as a whole process
# by xbuild (release build) and by `../shared/peers/build buildkit`. Prints both wall times,
# the per-step cost of each and their ratio. Needs root, a running Docker engine and hyperfine.
# Both builders start from the same busybox rootfs, imported under a name of its own
# (Docker's `busybox:local`, made by ../shared/peers/base, stays as it is).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
# RUN steps on the default network need slirp4netns (and runc, which the peers install).
install_packages hyperfine runc slirp4netns
steps=${STEPS:-50}
runs=${RUNS:-3}
peers=${PEERS:-../shared/peers}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctx=$work/ctx
mkdir -p "$ctx"
base=xbuild-bench/busybox:local
{ echo "FROM $base"; for i in $(seq "$steps"); do echo "RUN true # $i"; done; } >"$ctx/Dockerfile"
cargo build --release -q -p xbuild-cli
xb=target/release/xbuild
root=$work/root
scripts/mkrootfs "$work/rootfs.tar"
"$xb" --root "$root" import "$work/rootfs.tar" "$base" >/dev/null
/usr/bin/docker import "$work/rootfs.tar" "$base" >/dev/null
hyperfine --warmup 1 --runs "$runs" --export-json "$work/times.json" \
  -n xbuild "$xb --root $root build -q --no-cache $ctx" \
  -n buildkit "$peers/build buildkit $ctx --no-cache" >&2
python3 - "$work/times.json" "$steps" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
n = int(sys.argv[2])
x, b = r["xbuild"], r["buildkit"]
print(f"{n} x RUN true, cold: xbuild {x:.2f}s ({x/n*1000:.0f} ms/step), "
      f"BuildKit {b:.2f}s ({b/n*1000:.0f} ms/step); xbuild/BuildKit = {x/b:.2f}")
PY
