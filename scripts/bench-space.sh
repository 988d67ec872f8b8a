#!/usr/bin/env bash
# Time per image of the demo Space in a browser against the native CLI, on the same model, seed,
# steps and guidance, on this machine (issue 17, item 6):
#
#   - the Space's page in Debian's headless `chromium` (tests/browser/space-test.mjs: onnxruntime-web
#     as package-lock.json pins it, WebAssembly with 1 and with 2 threads; the page is
#     cross-origin isolated by its own headers), one image per class, the time the page measures
#     around its Euler loop for each image (the model already loaded);
#   - `tinydit-release sample` (ONNX Runtime's CPU provider, its default 2 intra-op threads), the
#     time it reports around its sampling loop: all classes in one batch, and one image alone.
#
# Both for the example's int8 variant (what its Space runs) and its full generator. The model is
# served as the Hub's resolve route serves it (`/{repo}/resolve/{tag}/{file}`, with the CORS and
# CORP headers the Hub sends) by a small Python server; nothing is downloaded.
#
#   scripts/bench-space.sh            # PYTHON (default .venv/bin/python) needs onnxruntime
#
# Needs `make test`'s set-up (tests/browser/node_modules, .venv). Writes its work into BENCH_DIR
# (default: a temporary folder) and a Markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-3}
target=${CARGO_TARGET_DIR:-target}
bin="$target/release/tinydit-release"
work=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
export ORT_DYLIB_PATH
ORT_DYLIB_PATH=$(scripts/ort-lib "$PYTHON")

cargo build --locked --release --quiet
"$bin" --quiet check --config examples/tinydit/release.toml --out "$work/example" > /dev/null

# The bundle behind the Hub's resolve route, with the Hub's cross-origin headers.
port_file="$work/port"
rm -f "$port_file"
"$PYTHON" - "$work/example/bundle" "$port_file" <<'EOF' &
import http.server, os, sys
bundle, port_file = sys.argv[1], sys.argv[2]
class Resolve(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.split("?")[0].split("/")
        # /{owner}/{name}/resolve/{revision}/{file...}
        if len(parts) < 6 or parts[3] != "resolve" or ".." in parts:
            self.send_error(404)
            return
        path = os.path.join(bundle, *parts[5:])
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(body)))
        self.send_header("access-control-allow-origin", "*")
        self.send_header("cross-origin-resource-policy", "cross-origin")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Resolve)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
EOF
server=$!
trap 'kill $server 2> /dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
hub="http://127.0.0.1:$(cat "$port_file")"

space_json="$work/example/space/space.json"
read -r seed steps scale variant_file < <("$PYTHON" - "$space_json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
d = s["defaults"]
print(d["seed"], d["steps"], d["guidance_scale"], s["generator"]["file"])
EOF
)
full_file=$("$PYTHON" - examples/tinydit/release.toml <<'EOF'
import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
print(next(o["output"] for o in c["onnx"] if o.get("role") == "generator" and "variant" not in o))
EOF
)

# A copy of the Space whose space.json names another generator file of the bundle.
space_for() {
  local file=$1 dir=$2
  rm -rf "$dir"
  cp -r "$work/example/space" "$dir"
  "$PYTHON" - "$dir/space.json" "$work/example/manifest.json" "$file" <<'EOF'
import json, sys
space_path, manifest_path, name = sys.argv[1:]
space = json.load(open(space_path))
entry = next(f for f in json.load(open(manifest_path))["files"] if f["path"] == name)
space["generator"].update(file=name, sha256=entry["sha256"], bytes=entry["bytes"])
json.dump(space, open(space_path, "w"), indent=2)
EOF
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "| model | runner | per image (ms), median | runs |"
echo "|---|---|---:|---|"
for model in "$variant_file" "$full_file"; do
  space_for "$model" "$work/space-$(basename "$model" .onnx)"
  for threads in 1 2; do
    all=()
    for run in $(seq "$RUNS"); do
      out="$work/browser-$(basename "$model" .onnx)-$threads-$run"
      node tests/browser/space-test.mjs "$work/space-$(basename "$model" .onnx)" "$hub" "$out" \
        "$seed" "$threads" > /dev/null
      all+=("$("$PYTHON" -c 'import json, statistics, sys; r = json.load(open(sys.argv[1])); print(round(statistics.median(i["ms"] for i in r["images"]), 1))' "$out/result.json")")
    done
    echo "| \`$model\` | browser, wasm, $threads thread(s) | $(printf '%s\n' "${all[@]}" | median) | ${all[*]} |"
  done
  for mode in batch one; do
    all=()
    for run in $(seq "$RUNS"); do
      args=(sample --config examples/tinydit/release.toml --model "$work/example/bundle/$model"
        --seed "$seed" --steps "$steps" --cfg-scale "$scale" --out "$work/cli-$run")
      [ "$mode" = one ] && args+=(--breed 0)
      line=$("$bin" --color never "${args[@]}" 2>&1 | grep 'sampled in')
      all+=("$(echo "$line" | awk '{ for (i = 1; i <= NF; i++) { if ($i == "Wrote") n = $(i+1); if ($i == "in" && $(i+2) == "s") s = $(i+1) } } END { printf "%.1f", s * 1000 / n }')")
    done
    what=$([ "$mode" = batch ] && echo "all classes in one batch" || echo "one image")
    echo "| \`$model\` | CLI \`sample\`, CPU, $what | $(printf '%s\n' "${all[@]}" | median) | ${all[*]} |"
  done
done
echo
echo "seed $seed, $steps steps, guidance scale $scale; work in $work"
