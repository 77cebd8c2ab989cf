#!/usr/bin/env bash
# Debian packages the test suite needs (browser tests, PostgreSQL). Installs what is missing when run as
# root (CI); otherwise prints the apt-get command to run.
set -euo pipefail
need=()
# package:command-that-proves-it-is-installed
for spec in ${CTISTUDIO_SYSTEM_PACKAGES:-$(cat "$(dirname "$0")/system-packages.txt" 2>/dev/null | grep -v "^#")}; do
  pkg=${spec%%:*}; probe=${spec#*:}
  [ -e "$probe" ] || command -v "$probe" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "[studio] apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "[studio] missing Debian packages: ${need[*]} — run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
