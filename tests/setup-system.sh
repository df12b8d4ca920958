#!/usr/bin/env bash
# Debian tools the tests run for real (systemd-analyze, promtool, prometheus); installs only what is missing.
set -euo pipefail
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v promtool >/dev/null || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "tests/setup-system.sh: missing ${need[*]}; install them (apt-get install ${need[*]}) or the tests that need them will skip" >&2
  fi
fi
