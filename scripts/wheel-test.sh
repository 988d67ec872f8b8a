#!/usr/bin/env bash
# The pip wheel, as a user gets it: built by maturin from pyproject.toml (`bindings = "bin"`),
# installed into a fresh virtual environment (pip fetches its onnxruntime dependency from PyPI),
# then `tinydit-release check` on the bundled example with nothing else set: no ORT_DYLIB_PATH,
# TINYDIT_RELEASE_PYTHON, VIRTUAL_ENV or --ort-lib, and a PATH whose python3 has no onnxruntime.
# The binary must find the library of the onnxruntime wheel installed beside it. The bundle it
# writes must then pass `verify`, and fail it once a file is changed.
#
#   PYTHON=.venv/bin/python scripts/wheel-test.sh    # run by `make test`
#
# PYTHON needs maturin (scripts/requirements-wheel.txt). Prints one `ok`/`FAIL` line per check;
# exits 1 if one failed.
set -euo pipefail
shopt -s inherit_errexit
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=0
ok() { echo "ok   wheel $*"; }
fail() { echo "FAIL wheel $*"; failed=1; }

# The dev profile, not the release one users get from PyPI: a release build takes about 10
# minutes on 2 cores, while `cargo test` has just built the dev binary, which maturin reuses
# (same target folder, same flags), so this costs seconds. What is tested (the wheel's layout,
# its dependency, the library search from the environment) does not depend on the profile.
# `--compatibility linux`: a wheel for this machine; the manylinux wheels for PyPI are built by
# the release workflow.
"$python" -m maturin build --quiet --profile dev --locked --compatibility linux \
  --out "$tmp/wheels" > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
wheel=("$tmp"/wheels/tinydit_release-*.whl)
[ -f "${wheel[0]}" ] || { echo "FAIL wheel build: no wheel in $tmp/wheels"; exit 1; }
if "$python" - "${wheel[0]}" <<'PY'
import re, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
meta = [n for n in names if n.endswith(".dist-info/METADATA")]
text = zipfile.ZipFile(sys.argv[1]).read(meta[0]).decode() if meta else ""
ok = any(re.search(r"\.data/scripts/tinydit-release$", n) for n in names)
sys.exit(0 if ok and re.search(r"^Requires-Dist: onnxruntime", text, re.M) else 1)
PY
then
  ok "build: the binary and the onnxruntime dependency are in $(basename "${wheel[0]}")"
else
  fail "build: the wheel lacks the binary or its onnxruntime dependency"
fi

python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check "${wheel[0]}"

# Nothing set: a bare environment, and a PATH without the venv.
bare=(env -i HOME="$tmp/home" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8)
if "${bare[@]}" "$tmp/venv/bin/tinydit-release" check --config examples/tinydit/release.toml \
  --out "$tmp/out" > "$tmp/check.log" 2>&1; then
  if grep -q "Loaded ONNX Runtime from \`$tmp/venv/" "$tmp/check.log"; then
    ok "check: the installed binary ran the example with the onnxruntime wheel beside it"
  else
    fail "check: ONNX Runtime was not loaded from the wheel's environment"
    grep -i "onnx runtime" "$tmp/check.log" || true
  fi
else
  fail "check: \`tinydit-release check\` on the example failed"
  tail -n 20 "$tmp/check.log"
fi

if "${bare[@]}" "$tmp/venv/bin/tinydit-release" verify "$tmp/out" > "$tmp/verify.log" 2>&1; then
  ok "verify: the example's bundle matches its SHA256SUMS and manifest"
else
  fail "verify: the example's bundle does not verify"
  tail -n 20 "$tmp/verify.log"
fi
printf 'changed\n' >> "$tmp/out/bundle/config.json"
status=0
"${bare[@]}" "$tmp/venv/bin/tinydit-release" verify "$tmp/out" > "$tmp/verify.log" 2>&1 || status=$?
if [ "$status" = 1 ] && grep -q 'different: `config.json` has sha256' "$tmp/verify.log"; then
  ok "verify: a changed file of the example is named (exit 1)"
else
  fail "verify: a changed file gave exit $status"
  tail -n 20 "$tmp/verify.log"
fi
exit "$failed"
