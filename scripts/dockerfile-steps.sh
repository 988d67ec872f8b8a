#!/usr/bin/env bash
# Runs what the Dockerfile's stages do, where that is possible without a Docker engine:
# - the `onnxruntime` stage: download the pip wheel, unpack it, find the library the runtime
#   stage copies, and check it is the file `ORT_DYLIB_PATH` in the Dockerfile names;
# - the runtime stage's entrypoint: the binary has an `action` subcommand;
# - Dockerfile.cuda: the same ONNX Runtime version, and pip resolves `onnxruntime-gpu[cuda,cudnn]`
#   to the NVIDIA library wheels whose folders (`nvidia/cu13/lib`, `nvidia/cudnn/lib`) the image
#   copies (a `--dry-run` resolution: metadata only, the 2.5 GB of wheels are not downloaded).
# Usage: scripts/dockerfile-steps.sh [BINARY]   (default: $CARGO_TARGET_DIR or target, /debug/tinydit-release)
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-${CARGO_TARGET_DIR:-target}/debug/tinydit-release}"
python="${PYTHON:-.venv/bin/python}"

version=$(sed -n 's/^ARG ORT_VERSION=//p' Dockerfile)
dylib=$(sed -n 's/^ENV ORT_DYLIB_PATH=//p' Dockerfile)
[ -n "$version" ] && [ -n "$dylib" ] || { echo "Dockerfile lacks ORT_VERSION or ORT_DYLIB_PATH" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$work/wheel" "onnxruntime==${version}"
"$python" -m zipfile -e "$work"/wheel/onnxruntime-*.whl "$work/unpacked"
mkdir -p "$work/opt/onnxruntime/lib"
cp "$work"/unpacked/onnxruntime/capi/libonnxruntime.so.* "$work/opt/onnxruntime/lib/"
expected="$work${dylib}"
[ -f "$expected" ] || { echo "the wheel has no $(basename "$dylib"); ORT_DYLIB_PATH in the Dockerfile is stale" >&2; ls "$work/opt/onnxruntime/lib" >&2; exit 1; }

# The library loads from the runtime stage's layout and runs the fixture generator.
"$binary" --quiet --ort-lib "$expected" sample --config examples/tinydit/release.toml \
    --model tests/fixtures/tinydit/onnx/generator.onnx --breed 0 --steps 1 --out "$work/sample"
"$binary" action --help > /dev/null
echo "Dockerfile steps: onnxruntime ${version} wheel provides $(basename "$dylib"); entrypoint \`tinydit-release action\` exists"

cuda_version=$(sed -n 's/^ARG ORT_VERSION=//p' Dockerfile.cuda)
[ "$cuda_version" = "$version" ] || { echo "Dockerfile.cuda has ONNX Runtime $cuda_version, Dockerfile $version" >&2; exit 1; }
"$python" -m pip install --quiet --disable-pip-version-check --dry-run --ignore-installed \
    --report "$work/cuda.json" "onnxruntime-gpu[cuda,cudnn]==${version}"
"$python" - "$work/cuda.json" <<'PY'
import json, sys
names = {i["metadata"]["name"].lower() for i in json.load(open(sys.argv[1]))["install"]}
needed = {"onnxruntime-gpu", "nvidia-cuda-runtime", "nvidia-cublas", "nvidia-cudnn-cu13",
          "nvidia-cufft", "nvidia-curand", "nvidia-cuda-nvrtc"}
missing = needed - names
if missing:
    sys.exit(f"onnxruntime-gpu[cuda,cudnn] no longer brings {sorted(missing)}; Dockerfile.cuda copies their libraries")
PY
grep -q 'nvidia/cu13/lib' Dockerfile.cuda && grep -q 'nvidia/cudnn/lib' Dockerfile.cuda
echo "Dockerfile.cuda: onnxruntime-gpu ${version} resolves to CUDA 13 and cuDNN 9 wheels"
