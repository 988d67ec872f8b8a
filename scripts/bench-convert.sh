#!/usr/bin/env bash
# Benchmark (not a test): convert the EMA weights of a full-size TinyDiT training checkpoint
# (image 128, hidden 384, 12 blocks, 6 heads; model + EMA + AdamW state, ~530 MB) with
# `tinydit-release convert --weights ema`, and in the same run with the Python way, as HF's
# convert.py does it: torch.load(weights_only=True), take `ema`, make tensors contiguous,
# safetensors.torch.save_file, reload and compare. Reports wall time and peak RSS of each
# process (GNU time), the output size, and the ratios against the targets: wall <= 0.2x Python's,
# peak RSS <= 1.3x the output file, and wall <= 1.1x `openssl dgst -sha256` of the input (the
# digest the output's metadata records is the floor of any conversion), all measured in this run.
#
#   scripts/bench-convert.sh [DIR]        (default DIR: target/bench)
#
# Environment: PYTHON (a Python with torch, safetensors, numpy, onnxruntime; default
# /work/venvs/torch/bin/python), RUNS (timed runs each, default 3; the best is reported),
# CARGO_TARGET_DIR (where the release binary is built), BIN (an already built release binary:
# skips the build). The checkpoint is made on demand by
# `tests/fixtures/generate.py --full-size DIR --only-full-size` and never committed.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${1:-target/bench}"
PYTHON="${PYTHON:-/work/venvs/torch/bin/python}"
RUNS="${RUNS:-3}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
CKPT="$DIR/tinydit_full.pt"
TIME=/usr/bin/time

if [ ! -x "$TIME" ]; then
    echo "error: GNU time not found at $TIME (apt-get install time)" >&2
    exit 2
fi
mkdir -p "$DIR"
if [ ! -f "$CKPT" ]; then
    echo "making $CKPT (full-size TinyDiT, takes a minute)" >&2
    "$PYTHON" tests/fixtures/generate.py --full-size "$DIR" --only-full-size >&2
fi

if [ -z "${BIN:-}" ]; then
    cargo build --release --locked --quiet
    BIN="$TARGET_DIR/release/tinydit-release"
fi

cat > "$DIR/python_convert.py" <<'PY'
"""The Python baseline: HF convert.py's steps for the `ema` entry of a training checkpoint."""
import sys

import torch
from safetensors.torch import load_file, save_file

src, dst = sys.argv[1], sys.argv[2]
ckpt = torch.load(src, map_location="cpu", weights_only=True)
sd = ckpt["ema"]
# convert.py: drop aliases (same storage), make everything contiguous, save, reload, compare.
seen, out = {}, {}
for name in sorted(sd):
    t = sd[name]
    key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
    if key in seen:
        continue
    seen[key] = name
    out[name] = t.contiguous()
save_file(out, dst, metadata={"format": "pt"})
back = load_file(dst)
for name, t in out.items():
    a = back[name].view(-1).view(torch.uint8)
    b = t.view(-1).view(torch.uint8)
    if not torch.equal(a, b):
        raise SystemExit(f"mismatch in {name}")
PY

# One run under GNU time: prints "wall_seconds max_rss_kib".
measure() {
    local log="$DIR/time.log"
    "$TIME" -v "$@" > /dev/null 2> "$log" || { cat "$log" >&2; exit 1; }
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF == 3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    echo "$wall $rss"
}

best() { # keep the run with the smallest wall time
    local best_wall="" best_rss=""
    for _ in $(seq "$RUNS"); do
        read -r wall rss < <(measure "$@")
        if [ -z "$best_wall" ] || awk "BEGIN {exit !($wall < $best_wall)}"; then
            best_wall=$wall best_rss=$rss
        fi
    done
    echo "$best_wall $best_rss"
}

cat "$CKPT" > /dev/null  # warm the page cache for both
RUST_OUT="$DIR/rust/model.safetensors"
PY_OUT="$DIR/python/model.safetensors"
mkdir -p "$DIR/rust" "$DIR/python"
read -r ssl_wall ssl_rss < <(best openssl dgst -sha256 "$CKPT")
read -r rust_wall rust_rss < <(best "$BIN" convert "$CKPT" --weights ema -o "$RUST_OUT" --quiet)
read -r py_wall py_rss < <(best "$PYTHON" "$DIR/python_convert.py" "$CKPT" "$PY_OUT")

ckpt_bytes=$(stat -L -c %s "$CKPT")
out_bytes=$(stat -c %s "$RUST_OUT")
"$PYTHON" - "$RUST_OUT" "$PY_OUT" <<'PY'
import sys
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert a.keys() == b.keys(), "different tensor names"
for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    assert a[k].contiguous().view(-1).view(__import__("torch").uint8).equal(
        b[k].contiguous().view(-1).view(__import__("torch").uint8)), k
print(f"outputs agree: {len(a)} tensors, byte for byte", file=sys.stderr)
PY

awk -v rw="$rust_wall" -v rr="$rust_rss" -v pw="$py_wall" -v pr="$py_rss" -v sw="$ssl_wall" \
    -v cb="$ckpt_bytes" -v ob="$out_bytes" -v runs="$RUNS" 'BEGIN {
    printf "checkpoint  %.1f MB\noutput      %.1f MB (EMA weights)\n", cb/1e6, ob/1e6
    printf "best of %d runs, page cache warm\n", runs
    printf "%-26s %10s %14s\n", "", "wall (s)", "peak RSS (MB)"
    printf "%-26s %10.2f %14.1f\n", "tinydit-release convert", rw, rr*1024/1e6
    printf "%-26s %10.2f %14.1f\n", "python torch+safetensors", pw, pr*1024/1e6
    printf "%-26s %10.2f\n", "openssl dgst -sha256", sw
    printf "wall ratio  %.3f (target <= 0.2)\n", rw/pw
    printf "RSS/output  %.2f (target <= 1.3)\n", rr*1024/ob
    printf "floor ratio %.2f (convert / sha256 of the input; target <= 1.1)\n", rw/sw
}'
