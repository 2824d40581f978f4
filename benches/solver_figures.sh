#!/usr/bin/env bash
# solver_figures.sh — the solver's whole-process figures on the standard context
# (../shared/bench/gen-context: 20,000 files, 256 MiB, 10 stages fanning into one), each as a
# ratio measured in the same run:
#   - no-op rebuild: xbuild vs Docker's BuildKit (`../shared/peers/build buildkit`), hyperfine;
#   - cold context hashing: `xbuild debug context-checksum --cold` vs `b3sum` over the same files;
#   - peak RSS of xbuild's cold build and no-op rebuild.
# SINGLE=1 builds a one-stage Dockerfile copying the same ten modules instead of the standard
# multi-stage one (same files hashed, fewer steps). Needs root, hyperfine, b3sum, and
# busybox:local imported in Docker (PEERS=0 skips BuildKit).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
peers=${PEERS_DIR:-../shared/peers}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctx=$work/ctx
python3 ../shared/bench/gen-context "$ctx" >/dev/null
file=$ctx/Dockerfile
if [ "${SINGLE:-0}" = 1 ]; then
  file=$ctx/Dockerfile.single
  { echo "FROM busybox:local"
    for s in 00 01 02 03 04 05 06 07 08 09; do echo "COPY mod$s /src$s"; done
    echo 'RUN find /src00 -type f | wc -l > /count && cat /src00/pkg00/* | md5sum > /sum'
    echo 'CMD ["cat", "/count"]'; } >"$file"
fi
cargo build --release -q -p xbuild-cli
xb=$PWD/target/release/xbuild
root=$work/root
scripts/mkrootfs "$work/rootfs.tar" >/dev/null
"$xb" --root "$root" import "$work/rootfs.tar" busybox:local >/dev/null
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
cold_rss=$(rss "$xb" --root "$root" build -q -f "$file" -t figures:1 "$ctx")
sleep 2.1 # past the stat cache's racy window, as a real edit-build cycle is
"$xb" --root "$root" build -q -f "$file" -t figures:1 "$ctx" >/dev/null
noop_rss=$(rss "$xb" --root "$root" build -q -f "$file" -t figures:1 "$ctx")
cmds=(-n xbuild-noop "$xb --root $root build -q -f $file -t figures:1 $ctx")
if [ "${PEERS:-1}" != 0 ]; then
  "$peers/build" buildkit "$ctx" -f "$file" >/dev/null
  cmds+=(-n buildkit-noop "$peers/build buildkit $ctx -f $file")
fi
(cd "$ctx" && find . -type f ! -path './ignored/*' ! -name Dockerfile\* ! -name .dockerignore) >"$work/files"
cmds+=(-n xbuild-hash-cold "$xb --root $root debug context-checksum --cold $ctx")
cmds+=(-n b3sum "cd $ctx && xargs -d '\n' b3sum <$work/files >/dev/null")
hyperfine --warmup 1 --runs "$runs" --export-json "$work/times.json" "${cmds[@]}" >&2
python3 - "$work/times.json" "$cold_rss" "$noop_rss" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = lambda n: r[n]["median"]
print(f"no-op rebuild: xbuild {med('xbuild-noop')*1000:.0f} ms (median of {len(r['xbuild-noop']['times'])})", end="")
if "buildkit-noop" in r:
    print(f", BuildKit {med('buildkit-noop')*1000:.0f} ms; BuildKit/xbuild = {med('buildkit-noop')/med('xbuild-noop'):.1f}x")
else:
    print()
print(f"cold context hashing: xbuild {med('xbuild-hash-cold')*1000:.0f} ms, b3sum {med('b3sum')*1000:.0f} ms; "
      f"throughput xbuild/b3sum = {med('b3sum')/med('xbuild-hash-cold'):.2f}")
print(f"peak RSS: cold build {int(sys.argv[2])/1024:.0f} MB, no-op rebuild {int(sys.argv[3])/1024:.0f} MB")
PY
