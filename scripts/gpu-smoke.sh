#!/usr/bin/env bash
# The smoke test on CUDA, as one prepared script for a GPU machine (issue 4, item 8).
#
#   scripts/gpu-smoke.sh            # from the repository root, on a machine with an NVIDIA GPU
#
# 1. installs scripts/requirements-cuda.txt (onnxruntime-gpu 1.31.1 and the CUDA 13 + cuDNN 9
#    libraries from PyPI, each pinned by version and sha256, ~1.6 GB; Linux x86_64, Python 3.11
#    to 3.14) into $VENV, a no-op when it is already there; with WHEELHOUSE set, installs offline
#    from that folder (`pip download --no-deps --require-hashes -r scripts/requirements-cuda.txt
#    -d DIR` on a machine with network);
# 2. builds the release binary (or uses $BIN);
# 3. runs `smoke` on the committed TinyDiT fixture with providers = ["cuda"] and
#    require-provider = true (a CUDA failure is exit code 2, never a CPU run), golden parity and
#    the classifier included, then the same on the CPU with the same library as a baseline;
# 4. with FULL_MODEL=path/to/generator_full.onnx (tests/fixtures/generate.py --full-size), also
#    times `sample` of 13 classes x 50 steps, explicit CFG, on CUDA and on the CPU.
#
# Prints the provider that ran, every check, and the timings; exits non-zero if the CUDA smoke
# test does not pass. Environment: VENV (default .venv-gpu), PYTHON (default python3),
# WHEELHOUSE, BIN, FULL_MODEL, THREADS (CPU intra-op threads, default: all cores). Relative
# paths in VENV, WHEELHOUSE, BIN and FULL_MODEL are taken from the directory it is started in.
set -euo pipefail

# Paths given relative to the caller's directory, made absolute before anything changes directory
# (the smoke runs below `cd` into a scratch folder). A BIN without a slash is looked up on PATH.
absolute() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
if [[ -n "${BIN:-}" ]]; then
  if [[ "$BIN" == */* ]]; then
    BIN="$(absolute "$BIN")"
  else
    found="$(command -v "$BIN")" || { echo "BIN: \`$BIN\` is not a file or a command on PATH" >&2; exit 2; }
    BIN="$found"
  fi
  [[ -x "$BIN" ]] || { echo "BIN: $BIN is not an executable file" >&2; exit 2; }
fi
[[ -z "${VENV:-}" ]] || VENV="$(absolute "$VENV")"
[[ -z "${WHEELHOUSE:-}" ]] || WHEELHOUSE="$(absolute "$WHEELHOUSE")"
[[ -z "${FULL_MODEL:-}" ]] || FULL_MODEL="$(absolute "$FULL_MODEL")"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv-gpu}"
python="${PYTHON:-python3}"
threads="${THREADS:-$(nproc)}"
work="$(mktemp -d "${TMPDIR:-/tmp}/gpu-smoke.XXXXXX")"

echo "== machine"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
else
  echo "nvidia-smi: not available"
fi
echo "cores: $(nproc)"

echo "== onnxruntime-gpu"
[[ -x "$venv/bin/pip" ]] || "$python" -m venv "$venv"
# Exactly the pinned wheels, nothing else (already-installed pins are not downloaded again).
pins=(--quiet --disable-pip-version-check --require-hashes --no-deps -r scripts/requirements-cuda.txt)
if [[ -n "${WHEELHOUSE:-}" ]]; then
  "$venv/bin/pip" install "${pins[@]}" --no-index --find-links "$WHEELHOUSE"
else
  "$venv/bin/pip" install "${pins[@]}"
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ORT_DYLIB_PATH="$(scripts/ort-lib "$venv/bin/python")"
# The CUDA provider library NEEDS cuBLAS/cudart/curand from nvidia/cu13/lib and dlopens cuDNN.
LD_LIBRARY_PATH="$site/nvidia/cu13/lib:$site/nvidia/cudnn/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ORT_DYLIB_PATH LD_LIBRARY_PATH
echo "library: $ORT_DYLIB_PATH"

echo "== build"
if [[ -z "${BIN:-}" ]]; then
  cargo build --release --locked --quiet
  BIN="$(absolute "${CARGO_TARGET_DIR:-target}/release/tinydit-release")"
fi
"$BIN" --version

cp -r tests/fixtures/tinydit "$work/tinydit"
config() { # providers require-provider threads
  cat <<TOML
[model]
name = "TinyDiT fixture"
hub-repo = "someone/tinydit"

[[onnx]]
path = "tinydit/onnx/generator.onnx"
role = "generator"

[[onnx]]
path = "tinydit/onnx/classifier_ext.onnx"
role = "classifier"

[generator]
image-size = 32
classes = ["Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau",
           "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx", "Other"]
uncond-class = 12
inputs = { label = "breed" }
steps = 50

[classifier]
image-size = 64
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
labels = ["cat", "other"]
expect = "cat"

[smoke]
providers = $1
require-provider = $2
threads = $3
samples-per-class = 4
batch-size = 13

[smoke.golden]
inputs = "tinydit/golden/inputs.safetensors"
outputs = "tinydit/golden/outputs.safetensors"
TOML
}
config '["cuda"]' true "$threads" >"$work/cuda.toml"
config '["cpu"]' false "$threads" >"$work/cpu.toml"

summarize() { # report.json
  "$venv/bin/python" - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"provider: {r['provider']}  fallback: {r['provider_fallback']}")
for c in r["checks"]:
    print(f"  {'pass' if c['passed'] else 'FAIL'} {c['name']}: {c['detail']}")
m = r["metrics"]
print("  timings: load {:.0f} ms, step p50 {:.2f} ms, image p50 {:.2f} ms, p95 {:.2f} ms".format(
    m["smoke.load_ms"], m["smoke.step_ms_p50"], m["smoke.latency_ms_p50"], m["smoke.latency_ms_p95"]))
print("  golden max abs diff {:.2e}".format(m.get("smoke.golden_max_abs_diff", float("nan"))))
PY
}

status=0
for name in cuda cpu; do
  echo "== smoke on $name (fixture: 13 classes x 4 samples, 50 steps, explicit CFG)"
  start=$(date +%s.%N)
  set +e
  (cd "$work" && "$BIN" smoke --config "$name.toml" --out "out-$name" --json >"report-$name.json")
  code=$?
  set -e
  end=$(date +%s.%N)
  echo "exit code $code, process wall $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s"
  if [[ -s "$work/report-$name.json" ]]; then summarize "$work/report-$name.json"; fi
  if [[ $name == cuda && $code -ne 0 ]]; then status=1; fi
done

if [[ -n "${FULL_MODEL:-}" ]]; then
  # Paths in release.toml stay inside its folder, so the model is copied next to it.
  cp "$FULL_MODEL" "$work/generator_full.onnx"
  for name in cuda cpu; do
    providers='["cuda"]' require=true
    if [[ $name == cpu ]]; then providers='["cpu"]' require=false; fi
    cat >"$work/full-$name.toml" <<TOML
[model]
name = "TinyDiT full size on $name"
hub-repo = "someone/tinydit"

[[onnx]]
path = "generator_full.onnx"
role = "generator"

[generator]
image-size = 128
classes = ["Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau",
           "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx", "Other"]
uncond-class = 12
inputs = { label = "breed" }
steps = 50

[smoke]
providers = $providers
require-provider = $require
threads = $threads
batch-size = 13
TOML
    echo "== full-size sample on $name (13 classes x 1, 50 steps, explicit CFG, batch 26 per call)"
    (cd "$work" && "$BIN" sample --config "full-$name.toml" --model generator_full.onnx \
      --num-images 1 --steps 50 --out "full-$name" 2>&1 | grep -E "Opened|Wrote|warning|error") || status=1
  done
fi

echo "== results in $work"
exit "$status"
