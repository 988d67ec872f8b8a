#!/usr/bin/env bash
# Benchmark of the smoke/sample loop against the same loop in Python onnxruntime (issue 4).
#
#   flock /tmp/cargo.lock scripts/bench-smoke.sh            # on a shared machine, hold the lock
#
# Full-size TinyDiT generator (image 128, patch 16, hidden 384, 12 blocks, 6 heads), exported on
# demand by tests/fixtures/generate.py (never committed); 13 classes x 1 sample, 50 Euler steps,
# explicit CFG (one call per step on a batch of 26), CPU, intra-op threads $THREADS, inter-op 1,
# ORT_ENABLE_ALL. Rust (`tinydit-release sample`) and Python (`tests/fixtures/reference_sampler.py
# --bench`) load the very same libonnxruntime.so (the Python package's, via ORT_DYLIB_PATH) and run
# interleaved, $RUNS times each. Reported per run: sampling wall time (load excluded; both tools
# time exactly the loop), whole-process wall time and peak RSS (/usr/bin/time).
#
# Environment: PYTHON (with torch, onnx, onnxruntime==1.31.1, numpy; default python3), THREADS
# (default 1; `default` compares the two tools' defaults: no `smoke.threads`, i.e. the CPUs this
# process may use, against `ort.InferenceSession(path)` with every onnxruntime default), RUNS
# (default 3), BENCH_DIR (default target/bench-smoke), FULL_MODEL (an exported full-size generator
# to use instead of exporting one), CARGO_TARGET_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
threads="${THREADS:-1}"
runs="${RUNS:-3}"
dir="${BENCH_DIR:-$root/target/bench-smoke}"
target="${CARGO_TARGET_DIR:-$root/target}"
model="$dir/generator_full.onnx"
mkdir -p "$dir"
if [[ -n "${FULL_MODEL:-}" && ! -f "$model" ]]; then
  cp "$FULL_MODEL" "$model"
fi
if [[ "$threads" == default ]]; then
  threads_toml=""
  python_threads=0
else
  threads_toml="threads = $threads"
  python_threads="$threads"
fi

if [[ ! -f "$model" ]]; then
  echo "exporting the full-size generator to $model" >&2
  if "$python" "$root/tests/fixtures/generate.py" --help 2>/dev/null | grep -q -- --full-size; then
    "$python" "$root/tests/fixtures/generate.py" --full-size "$dir" --only-full-size >&2
  else
    # Fallback: untrained weights are as good as trained ones for timing.
    "$python" - "$root/tests/fixtures" "$model" <<'PY'
import sys, torch
sys.path.insert(0, sys.argv[1])
import tinydit_model as tm
torch.manual_seed(0)
m = tm.build(tm.FULL_CONFIG).eval()
x = (torch.randn(2, 3, 128, 128), torch.rand(2), torch.tensor([0, 5]))
axes = {n: {0: "batch"} for n in ["noise", "timestep", "breed", "velocity"]}
torch.onnx.export(m, x, sys.argv[2], input_names=["noise", "timestep", "breed"],
                  output_names=["velocity"], dynamic_axes=axes, opset_version=17, dynamo=False)
PY
  fi
fi

ORT_DYLIB_PATH="$("$root/scripts/ort-lib" "$python")"
export ORT_DYLIB_PATH
(cd "$root" && cargo build --release --locked --quiet)
# A private copy: a target folder shared with other checkouts may be rebuilt under us.
bin="$dir/tinydit-release"
cp "$target/release/tinydit-release" "$bin"

cat >"$dir/release.toml" <<TOML
[model]
name = "TinyDiT full-size benchmark"
hub-repo = "bench/tinydit"

[[onnx]]
path = "generator_full.onnx"
role = "generator"

[generator]
image-size = 128
classes = ["Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau",
           "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx", "Other"]
uncond-class = 12
inputs = { label = "breed" }
cfg = "explicit"
cfg-scale = 1.5
steps = 50

[smoke]
providers = ["cpu"]
$threads_toml
batch-size = 13
TOML

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); onnxruntime: $ORT_DYLIB_PATH" >&2
results="$dir/results.txt"
: >"$results"
row() { # run tool sample_s process_s rss_kb
  awk -v r="$1" -v t="$2" -v s="$3" -v w="$4" -v m="$5" \
    'BEGIN { printf "%-3s %-6s %9.2f %10.2f %12.1f\n", r, t, s, w, m / 1024 }' | tee -a "$results"
}
echo "run tool    sample_s  process_s  peak_rss_mb"
for run in $(seq 1 "$runs"); do
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$bin" sample --config "$dir/release.toml" \
    --model "$dir/generator_full.onnx" --num-images 1 --steps 50 --seed 0 --out "$dir/samples" \
    2>"$dir/rust.err"
  sample_s="$(sed -n 's/.*sampled in \([0-9.]*\) s.*/\1/p' "$dir/rust.err")"
  read -r wall rss <"$dir/time.txt"
  row "$run" rust "$sample_s" "$wall" "$rss"
  grep -o "([0-9]* intra-op thread(s))" "$dir/rust.err" >&2 || true

  /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$python" "$root/tests/fixtures/reference_sampler.py" \
    --model "$dir/generator_full.onnx" --breeds 0,1,2,3,4,5,6,7,8,9,10,11,12 --steps 50 \
    --cfg explicit --cfg-scale 1.5 --threads "$python_threads" --bench >"$dir/python.json"
  sample_s="$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["wall_s"])' "$dir/python.json")"
  read -r wall rss <"$dir/time.txt"
  row "$run" python "$sample_s" "$wall" "$rss"
done

# Medians per tool and the Rust/Python ratios the targets are stated in.
awk '
  function median(list, n,   i, j, t, a) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { s[$2] = s[$2] " " $3; w[$2] = w[$2] " " $4; m[$2] = m[$2] " " $5 }
  END {
    printf "median rust:   sample %.2f s, process %.2f s, peak RSS %.1f MB\n", median(s["rust"]), median(w["rust"]), median(m["rust"])
    printf "median python: sample %.2f s, process %.2f s, peak RSS %.1f MB\n", median(s["python"]), median(w["python"]), median(m["python"])
    printf "rust/python:   sample %.3f, process %.3f, peak RSS %.3f (targets: wall <= 1.0, memory <= 1.2)\n",
      median(s["rust"]) / median(s["python"]), median(w["rust"]) / median(w["python"]), median(m["rust"]) / median(m["python"])
  }' "$results"
