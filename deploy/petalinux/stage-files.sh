#!/usr/bin/env bash
# Fill recipes-apps/caed/files/ of this layer with what the caed recipe's SRC_URI
# names: the sdist of the caed repository, the unit and default config from its
# systemd/ folder, the model.json vitis_build wrote beside the xmodel (the daemon
# reads the model id beside the .xmodel), the encoder vai_c_xir compiled from it,
# and the xclbin of the DPU it was compiled for (the runtime refuses a DPU
# fingerprint mismatch).
set -euo pipefail

if [ $# -ne 4 ]; then
  echo "usage: $0 CAED_REPO MODEL.json ENCODER.xmodel DPU.xclbin" >&2
  exit 2
fi
repo=$(cd "$1" && pwd)
manifest=$2
xmodel=$3
xclbin=$4
layer=$(cd "$(dirname "$0")" && pwd)
files="$layer/recipes-apps/caed/files"
python=${PYTHON:-python3}

for f in "$repo/setup.cfg" "$repo/systemd/caed.service" "$repo/systemd/caed.toml" "$manifest" "$xmodel" "$xclbin"; do
  [ -f "$f" ] || { echo "$0: missing $f" >&2; exit 2; }
done

mkdir -p "$files"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# Build from a copy so the checkout gets no build/ or egg-info litter.
tar -C "$repo" --exclude=.git --exclude=.venv --exclude='*.egg-info' --exclude=build -cf - . | tar -C "$build" -xf -
(cd "$build" && "$python" setup.py -q sdist --dist-dir "$build/dist" >/dev/null)
version=$(cd "$build" && "$python" setup.py -q --version 2>/dev/null | tail -n 1)
recipe=$(ls "$layer"/recipes-apps/caed/caed_*.bb)
if [ "$(basename "$recipe")" != "caed_${version}.bb" ]; then
  echo "$0: the repository is caed $version but the recipe is $(basename "$recipe"); rename it" >&2
  exit 1
fi

cp "$build/dist/caed-${version}.tar.gz" "$files/"
install -m 0644 "$repo/systemd/caed.service" "$repo/systemd/caed.toml" "$files/"
install -m 0644 "$manifest" "$files/model.json"
install -m 0644 "$xmodel" "$files/encoder.xmodel"
install -m 0644 "$xclbin" "$files/dpu.xclbin"
echo "staged caed $version into $files"
