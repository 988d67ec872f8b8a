#!/usr/bin/env bash
# Benchmark (not a test): `plan` and `publish` of a bundle holding the full-size TinyDiT
# (EMA weights converted to safetensors, ~132 MB, and the full-size generator ONNX, ~132 MB)
# against the Hub and GitHub emulators, and in the same run the Python way
# (`huggingface_hub.HfApi.upload_folder` of the same folder to another repo of the same
# emulator). Reports wall time and peak RSS (GNU time) of: `plan` from the bundle alone (it
# re-hashes every file against the manifest), the first `publish`, a no-op re-run (and the
# requests it wrote), Python's first upload and its re-run; and sha256 throughput of `plan`'s
# hashing against `openssl dgst -sha256` on the same files.
#
#   scripts/bench-publish.sh [DIR]        (default DIR: target/bench-publish)
#
# Environment: FULLSIZE (folder with tinydit_full.pt and generator_full.onnx, default
# /work/fullsize), BIN_DIR (folder with release builds of tinydit-release, hub-emulator and
# github-emulator, default target/release), GITHUB_RELEASE (`false`: the Hub side alone), PYTHON (the venv's Python with huggingface_hub and
# hf_xet, default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${1:-target/bench-publish}"
FULLSIZE="${FULLSIZE:-/work/fullsize}"
BIN_DIR="${BIN_DIR:-target/release}"
PYTHON="${PYTHON:-.venv/bin/python}"
TIME=/usr/bin/time
BIN="$BIN_DIR/tinydit-release"

rm -rf "$DIR"
mkdir -p "$DIR/dist/bundle/onnx"
DIR="$(cd "$DIR" && pwd)"
BUNDLE="$DIR/dist/bundle"

# The bundle: converted weights, the generator, a card and metrics.
"$BIN" -q convert "$FULLSIZE/tinydit_full.pt" -o "$BUNDLE/tinydit_cats.safetensors" --weights ema
cp "$FULLSIZE/generator_full.onnx" "$BUNDLE/onnx/cats_generator.onnx"
printf -- '---\nlicense: apache-2.0\n---\n# TinyDiT (benchmark)\n' > "$BUNDLE/README.md"
printf '{"version": "1.0.0", "metrics": {"fid": 40.0}}\n' > "$BUNDLE/metrics.json"

cat > "$DIR/release.toml" <<'EOF'
[model]
name = "TinyDiT benchmark"
hub-repo = "bench/tinydit"
github-repo = "bench/tinydit-src"
license = "apache-2.0"

[publish]
github-assets = ["*.safetensors", "onnx/*.onnx"]
EOF
# GITHUB_RELEASE=false measures the Hub side alone.
if [ "${GITHUB_RELEASE:-true}" = false ]; then
    echo 'github-release = false' >> "$DIR/release.toml"
fi

start() { # name data seed -> sets URL and SECOND
    local name="$1" data="$2" seed="$3"
    mkdir -p "$data"
    printf '%s' "$seed" > "$data.seed.json"
    "$BIN_DIR/$name" --data "$data" --port 0 --seed "$data.seed.json" > "$data.out" 2>/dev/null &
    echo $! >> "$DIR/pids"
    for _ in $(seq 100); do
        [ "$(wc -l < "$data.out")" -ge 2 ] && break
        sleep 0.1
    done
    URL="$(sed -n 1p "$data.out" | sed 's/^listening on //')"
    SECOND="$(sed -n 2p "$data.out" | sed 's/^.* on //')"
}
trap 'while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$DIR/pids"' EXIT
: > "$DIR/pids"
start hub-emulator "$DIR/hub" '{"tokens": [{"token": "hf_bench", "user": "bench", "scopes": ["read", "write"]}]}'
HUB="$URL"
start github-emulator "$DIR/gh" '{"tokens": [{"token": "gh_bench", "user": "bench", "scopes": ["contents:read", "contents:write"]}], "repos": [{"owner": "bench", "name": "tinydit-src"}]}'
GH="$URL"; UPLOADS="$SECOND"
SHA="$(curl -fsS -H 'Authorization: Bearer gh_bench' "$GH/repos/bench/tinydit-src/commits/main" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["sha"])')"

# The manifest `check` would write, with independent digests.
"$PYTHON" - "$DIR/dist" "$SHA" <<'EOF'
import hashlib, json, os, sys
dist, sha = sys.argv[1:3]
bundle = os.path.join(dist, "bundle")
files = []
for root, _, names in os.walk(bundle):
    for name in names:
        path = os.path.join(root, name)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        files.append({"path": os.path.relpath(path, bundle), "bytes": os.path.getsize(path),
                      "sha256": digest.hexdigest()})
files.sort(key=lambda f: f["path"])
json.dump({"schema_version": 1, "tool": "bench", "model": "TinyDiT benchmark",
           "hub_repo": "bench/tinydit", "github_repo": "bench/tinydit-src", "version": "1.0.0",
           "tag": "v1.0.0", "source": {"commit": sha, "dirty": False}, "outcome": "pass",
           "metrics": {"fid": 40.0}, "gates": [], "files": files},
          open(os.path.join(dist, "manifest.json"), "w"), indent=2)
EOF
BYTES="$(du -cb "$BUNDLE"/*.safetensors "$BUNDLE"/onnx/*.onnx | tail -1 | cut -f1)"

export HF_ENDPOINT="$HUB" GITHUB_API_URL="$GH" TINYDIT_RELEASE_GITHUB_UPLOAD_URL="$UPLOADS"
export HF_HOME="$DIR/hf-home" HF_HUB_DISABLE_TELEMETRY=1 GITHUB_SHA="$SHA"

measure() { # label command...
    local label="$1"; shift
    "$TIME" -f '%e %M' -o "$DIR/time" "$@" > "$DIR/out.json" 2> "$DIR/err.log" || {
        cat "$DIR/err.log" >&2; exit 1; }
    read -r wall rss < "$DIR/time"
    printf '| %-46s | %8s | %13.1f |\n' "$label" "$wall" "$(echo "$rss / 1024" | bc -l)"
}
writes() { grep -c -v '"method":"GET"' "$1/requests.jsonl" || true; }

echo "bundle: $(du -sb "$BUNDLE" | cut -f1) bytes ($BYTES in the two model files)"
echo
echo "|                                                | wall (s) | peak RSS (MB) |"
echo "|------------------------------------------------|---------:|--------------:|"
measure '`plan` (bundle alone: re-hash every file)' \
    env -u HF_TOKEN -u GITHUB_TOKEN "$BIN" plan --config "$DIR/release.toml" --bundle "$DIR/dist" --version 1.0.0 --json
export HF_TOKEN=hf_bench GITHUB_TOKEN=gh_bench
measure '`plan` with tokens (reads the Hub and GitHub)' \
    "$BIN" plan --config "$DIR/release.toml" --bundle "$DIR/dist" --version 1.0.0 --json
measure '`publish`, first run' \
    "$BIN" publish --config "$DIR/release.toml" --bundle "$DIR/dist" --version 1.0.0 --json
hub_before="$(writes "$DIR/hub")"; gh_before="$(writes "$DIR/gh")"
measure '`publish`, re-run (nothing to do)' \
    "$BIN" publish --config "$DIR/release.toml" --bundle "$DIR/dist" --version 1.0.0 --json
hub_after="$(writes "$DIR/hub")"; gh_after="$(writes "$DIR/gh")"
measure 'Python `upload_folder`, first run' \
    "$PYTHON" -c 'import sys; from huggingface_hub import HfApi; a = HfApi(); a.create_repo("bench/python", exist_ok=True); a.upload_folder(folder_path=sys.argv[1], repo_id="bench/python")' "$BUNDLE"
measure 'Python `upload_folder`, re-run' \
    "$PYTHON" -c 'import sys; from huggingface_hub import HfApi; HfApi().upload_folder(folder_path=sys.argv[1], repo_id="bench/python")' "$BUNDLE"
echo
echo "re-run: $((hub_after - hub_before)) non-GET request(s) to the Hub (preupload/paths-info are POST reads), $((gh_after - gh_before)) to GitHub"
grep -c '"path":"/api/models/bench/tinydit/commit/' "$DIR/hub/requests.jsonl" | sed 's/^/Hub commit POSTs in total: /'

# sha256: `plan` from the bundle alone is startup + reading the manifest + hashing every file.
best() { sort -n | head -1; }
ours="$(for _ in 1 2 3; do env -u HF_TOKEN -u GITHUB_TOKEN "$TIME" -f '%e' "$BIN" -q plan --config "$DIR/release.toml" --bundle "$DIR/dist" --version 1.0.0 --json 2>&1 >/dev/null | tail -1; done | best)"
theirs="$(for _ in 1 2 3; do "$TIME" -f '%e' openssl dgst -sha256 "$BUNDLE"/*.safetensors "$BUNDLE"/onnx/*.onnx "$BUNDLE"/README.md "$BUNDLE"/metrics.json 2>&1 >/dev/null | tail -1; done | best)"
echo
echo "sha256 of the bundle: plan ${ours} s, openssl dgst -sha256 ${theirs} s (best of 3);" \
     "throughput ratio (openssl time / ours): $(echo "scale=2; $theirs / $ours" | bc -l)"
