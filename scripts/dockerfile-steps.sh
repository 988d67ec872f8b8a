#!/usr/bin/env bash
# Runs what the Dockerfile's stages do, where that is possible without a Docker engine:
# - the `onnxruntime` stage: download the pip wheel, unpack it, find the library the runtime
#   stage copies, and check it is the file `ORT_DYLIB_PATH` in the Dockerfile names;
# - the runtime stage's entrypoint: the binary has an `action` subcommand.
# Usage: scripts/dockerfile-steps.sh [BINARY]   (default: target/debug/tinydit-release)
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-target/debug/tinydit-release}"
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
