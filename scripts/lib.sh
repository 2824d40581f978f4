# Shared helpers of scripts/demo, scripts/test and the bench scripts (sourced, not run).

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$0: needs root (overlay mounts, namespaces, runc); run it with sudo" >&2
    exit 1
  fi
}

# install_packages PKG... — installs the Debian packages that are missing.
install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# ensure_dockerd — makes sure a Docker engine answers (the end-to-end tests load and run the
# images xbuild writes). Starts Debian's dockerd with no bridge and no iptables (there is no
# network) on overlay2 when none runs, and stops it again when the calling script exits.
ensure_dockerd() {
  if /usr/bin/docker info >/dev/null 2>&1; then
    return 0
  fi
  step "starting dockerd"
  local log=/var/log/xbuild-dockerd.log
  mkdir -p /var/log
  nohup dockerd --bridge=none --iptables=false --ip6tables=false --storage-driver=overlay2 \
    >"$log" 2>&1 &
  XBUILD_DOCKERD_PID=$!
  trap stop_dockerd EXIT
  for _ in $(seq 1 60); do
    /usr/bin/docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "dockerd did not start; the end of $log:" >&2
  tail -20 "$log" >&2
  return 1
}

# stop_dockerd — stops the dockerd that ensure_dockerd started, if it started one.
stop_dockerd() {
  if [ -n "${XBUILD_DOCKERD_PID:-}" ]; then
    kill "$XBUILD_DOCKERD_PID" 2>/dev/null || true
    wait "$XBUILD_DOCKERD_PID" 2>/dev/null || true
    XBUILD_DOCKERD_PID=
  fi
}
