#!/usr/bin/env bash
# Debian tools the tests run for real: systemd-analyze and systemd-sysusers (package systemd),
# promtool and the prometheus server (package prometheus), ffmpeg (video evaluation: MJPEG and
# x264), clang with libFuzzer and the sanitizers (the arith decoder's fuzz test), the aarch64
# cross compiler, its libc and qemu-user (the arith coder's cross-architecture test). Installs
# only what is missing, so a
# second run is instant; needs root (as in CI) to install, otherwise says what to install and the
# tests that need it skip with that reason.
set -euo pipefail
need=()
for tool in systemd-analyze:systemd systemd-sysusers:systemd promtool:prometheus prometheus:prometheus ffmpeg:ffmpeg \
    clang:clang aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu qemu-aarch64:qemu-user; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
[ -e /usr/aarch64-linux-gnu/lib/libc.a ] || need+=(libc6-dev-arm64-cross)
# libFuzzer's runtime is only a recommendation of clang's packages
[ -e "$(clang -print-file-name="libclang_rt.fuzzer-$(uname -m).a" 2>/dev/null)" ] || need+=(libclang-rt-dev)
[ ${#need[@]} -eq 0 ] && exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/setup-system.sh: missing ${need[*]}; install them (apt-get install ${need[*]}) or the tests that need them will skip" >&2
  exit 0
fi
echo "tests/setup-system.sh: installing ${need[*]}" >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
  echo "tests/setup-system.sh: could not install ${need[*]}; the tests that need them will skip" >&2
fi
