#!/bin/bash
# Download the wheels of scripts/offline_wheels.txt for a GPU machine without internet.
# Usage: scripts/offline_wheels.sh [DEST=.whl] [PYTHON_VERSION=3.12]
set -euo pipefail
dest=${1:-.whl}
py=${2:-3.12}
mkdir -p "$dest"
grep -v '^#' "$(dirname "$0")/offline_wheels.txt" | while read -r pin; do
  [ -n "$pin" ] || continue
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dest" "$pin"
done
du -sh "$dest"
