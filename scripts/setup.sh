#!/usr/bin/env bash
# Makes a fresh machine ready: npm packages (when node_modules is missing or stale) and the Debian
# packages the tests use (installed only when missing; we run as root, as CI does).

set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (npm ci; native modules compile, a few minutes)"
  npm ci --no-audit --no-fund
fi



# Debian package -> a command it provides.
declare -A wanted=([socat]=socat [mosquitto]=mosquitto [protobuf-compiler]=protoc [chromium]=chromium)
missing=()
for pkg in "${!wanted[@]}"; do
  command -v "${wanted[$pkg]}" >/dev/null 2>&1 || [ -x "/usr/sbin/${wanted[$pkg]}" ] || missing+=("$pkg")
done
# PostgreSQL's server binaries (the operations console's server-database store is tested on a
# throwaway server started by the test itself: test/helpers/postgres.ts).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
