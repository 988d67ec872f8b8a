#!/usr/bin/env bash
# Benchmark of `tinydit-release quantize` against the Python way, onnxruntime's
# `quantize_dynamic(weight_type=QUInt8, per_channel=True)` (the authors' src/optimize_onnx.py), in
# one run (issue 16, item 5):
#
#   flock /tmp/cargo.lock scripts/bench-quantize.sh        # on a shared machine, hold the lock
#
# 1. The full-size TinyDiT generator (image 128, patch 16, hidden 384, 12 blocks, 6 heads, 13
#    classes; 132.5 MB float32, opset 17) with random weights of a fixed seed, written by
#    scripts/tinydit-onnx.py with the `onnx` package (no PyTorch; never committed).
# 2. Quantizing it, $RUNS times each, interleaved: wall time and peak RSS of the whole process
#    (GNU time), output size.
# 3. Agreement of each output with the float model at the same noise, measured by our own `check`
#    (smoke stage, `smoke.variant.<name>.*`: velocity cosine / relative L2 along the float model's
#    trajectory, PSNR / SSIM of the final images per class, 13 classes, explicit CFG 1.5,
#    $AGREEMENT_STEPS Euler steps), both outputs judged as `[[onnx]] variant`s in one check; the
#    same on the trained tiny example generator (tests/fixtures/tinydit, hidden 32), whose
#    weights are real, quantized with `--min-elements 256` as examples/tinydit does.
# 4. Sampling latency on CPU of the float model and each output: `tinydit-release sample`, 4
#    images of one class, 50 steps, explicit CFG, $THREADS intra-op thread(s), $RUNS times each,
#    interleaved; the time `sample` reports around the loop (load excluded).
#
# Environment: PYTHON (with onnx==1.23.2, onnxruntime==1.31.1, numpy: scripts/requirements-bench.txt;
# default .venv/bin/python), RUNS (default 3), THREADS (default 1), AGREEMENT_STEPS (default 20),
# BENCH_DIR (default target/bench-quantize), CARGO_TARGET_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
runs="${RUNS:-3}"
threads="${THREADS:-1}"
steps="${AGREEMENT_STEPS:-20}"
dir="${BENCH_DIR:-$root/target/bench-quantize}"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$dir"
model="$dir/full.onnx"
if [[ ! -f "$model" ]]; then
  "$python" "$root/scripts/tinydit-onnx.py" "$model" >&2
fi

ORT_DYLIB_PATH="$("$root/scripts/ort-lib" "$python")"
export ORT_DYLIB_PATH
(cd "$root" && cargo build --release --locked --quiet)
# A private copy: a target folder shared with other checkouts may be rebuilt under us.
bin="$dir/tinydit-release"
cp "$target/release/tinydit-release" "$bin"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "onnxruntime: $ORT_DYLIB_PATH"
echo "model: $model, $(stat -c %s "$model") bytes"

cat >"$dir/qdyn.py" <<'PY'
import sys
from onnxruntime.quantization import QuantType, quantize_dynamic
quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QUInt8, per_channel=True)
PY
qdyn=("$python" "$dir/qdyn.py")

# --- 2. quantize: wall time, peak RSS, size ---
results="$dir/quantize.txt"
row() { # run tool wall_s rss_kb output_bytes
  awk -v r="$1" -v t="$2" -v w="$3" -v m="$4" -v o="$5" \
    'BEGIN { printf "%-3s %-7s %7.2f %12.1f %10.1f\n", r, t, w, m / 1024, o / 1e6 }' | tee -a "$results"
}
: >"$results"
echo
echo "run tool     wall_s  peak_rss_mb  output_mb"
for run in $(seq 1 "$runs"); do
  rm -f "$dir/ours.onnx" "$dir/qdyn.onnx"
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$bin" quantize "$model" -o "$dir/ours.onnx" \
    2>"$dir/ours.err"
  read -r wall rss <"$dir/time.txt"
  row "$run" ours "$wall" "$rss" "$(stat -c %s "$dir/ours.onnx")"
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" "${qdyn[@]}" "$model" "$dir/qdyn.onnx" 2>"$dir/qdyn.err"
  read -r wall rss <"$dir/time.txt"
  row "$run" python "$wall" "$rss" "$(stat -c %s "$dir/qdyn.onnx")"
done
grep -v "^ *Loaded\|^ *Quantizing" "$dir/ours.err" | sed 's/^ */ours: /' || true
"$python" - "$model" "$dir/ours.onnx" "$dir/qdyn.onnx" <<'PY'
import collections, sys
import onnx
for path in sys.argv[1:]:
    m = onnx.load(path, load_external_data=False)
    ops = collections.Counter(n.op_type for n in m.graph.node)
    keep = ["MatMul", "Gemm", "Conv", "Gather", "DequantizeLinear", "MatMulInteger",
            "ConvInteger", "DynamicQuantizeLinear"]
    print(path.rsplit("/", 1)[-1] + ":", ", ".join(f"{k} {ops[k]}" for k in keep if ops[k]),
          "| opset", [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")])
PY
awk -v model="$(stat -c %s "$model")" '
  function median(list, n,   i, j, t, a) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { w[$2] = w[$2] " " $3; m[$2] = m[$2] " " $4; s[$2] = $5 }
  END {
    mb = model / 1e6
    printf "median ours:   wall %.2f s, peak RSS %.1f MB (%.2fx the model), output %.1f MB (%.3fx)\n", median(w["ours"]), median(m["ours"]), median(m["ours"]) / mb, s["ours"], s["ours"] / mb
    printf "median python: wall %.2f s, peak RSS %.1f MB (%.2fx the model), output %.1f MB (%.3fx)\n", median(w["python"]), median(m["python"]), median(m["python"]) / mb, s["python"], s["python"] / mb
    printf "python/ours wall: %.2fx (goal >= 5); ours peak RSS / model %.2f (goal <= 1.5); ours output / model %.3f (goal <= 0.3)\n", median(w["python"]) / median(w["ours"]), median(m["ours"]) / mb, s["ours"] / mb
  }' "$results"

# --- 3. agreement, by our own check ---
classes='["Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau",
           "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx", "Other"]'
agreement() { # FOLDER IMAGE_SIZE LABEL
  cat >"$1/release.toml" <<TOML
[model]
name = "TinyDiT quantize benchmark"
hub-repo = "bench/tinydit"

[[onnx]]
path = "full.onnx"
role = "generator"

[[onnx]]
path = "ours.onnx"
role = "generator"
variant = "ours"
output = "onnx/ours.onnx"

[[onnx]]
path = "qdyn.onnx"
role = "generator"
variant = "quantize_dynamic"
output = "onnx/qdyn.onnx"

[generator]
image-size = $2
classes = $classes
uncond-class = 12
inputs = { label = "$3" }
cfg = "explicit"
cfg-scale = 1.5
steps = $steps

[smoke]
providers = ["cpu"]
threads = $threads
seed = 42
TOML
  rm -rf "$1/out"
  "$bin" check --config "$1/release.toml" --out "$1/out" >"$1/check.log" 2>&1 || true
  "$python" - "$1/out/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
print(f"{'variant':<18} {'cos min':>10} {'relL2 max':>10} {'PSNR min':>9} {'SSIM min':>9}  verdict")
for v in report["variants"]:
    m = {k.rsplit(".", 1)[-1]: x for k, x in v["metrics"].items() if k.count(".") == 3}
    print(f"{v['name']:<18} {m.get('velocity_cosine_min', float('nan')):>10.6f} "
          f"{m.get('velocity_rel_l2_max', float('nan')):>10.4f} {m.get('psnr_min_db', float('nan')):>9.2f} "
          f"{m.get('ssim_min', float('nan')):>9.4f}  {'pass' if v['passed'] else 'fail: ' + v['detail']}")
PY
}
echo
echo "agreement with the float model, full size (random weights), $steps steps, by \`check\`:"
agreement "$dir" 128 breed

small="$dir/example"
mkdir -p "$small"
cp "$root/tests/fixtures/tinydit/onnx/generator.onnx" "$small/full.onnx"
"$bin" quantize "$small/full.onnx" -o "$small/ours.onnx" --min-elements 256 2>/dev/null
"${qdyn[@]}" "$small/full.onnx" "$small/qdyn.onnx" 2>/dev/null
echo
echo "agreement with the float model, trained tiny example (hidden 32), $steps steps, by \`check\`:"
agreement "$small" 32 breed

# --- 4. sampling latency ---
cat >"$dir/sample.toml" <<TOML
[model]
name = "TinyDiT quantize benchmark"
hub-repo = "bench/tinydit"

[[onnx]]
path = "full.onnx"
role = "generator"

[generator]
image-size = 128
classes = $classes
uncond-class = 12
inputs = { label = "breed" }
cfg = "explicit"
cfg-scale = 1.5
steps = 50

[smoke]
providers = ["cpu"]
threads = $threads
TOML
latency="$dir/latency.txt"
: >"$latency"
echo
echo "sampling 4 images, 50 steps, explicit CFG, cpu, $threads thread(s): seconds per run"
for run in $(seq 1 "$runs"); do
  for m in full ours qdyn; do
    "$bin" sample --config "$dir/sample.toml" --model "$dir/$m.onnx" --breed Bengal \
      --num-images 4 --seed 0 --out "$dir/samples-$m" 2>"$dir/sample.err"
    s="$(sed -n 's/.*sampled in \([0-9.]*\) s.*/\1/p' "$dir/sample.err")"
    echo "$run $m $s" | tee -a "$latency"
  done
done
awk '
  function median(list, n,   i, j, t, a) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { s[$2] = s[$2] " " $3 }
  END {
    printf "median sampling: full %.2f s, ours %.2f s (%.2fx, goal <= 1.2), quantize_dynamic %.2f s (%.2fx)\n",
      median(s["full"]), median(s["ours"]), median(s["ours"]) / median(s["full"]), median(s["qdyn"]), median(s["qdyn"]) / median(s["full"])
  }' "$latency"
