# Shared helpers of scripts/demo and scripts/test (sourced, not run).

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
