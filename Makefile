# Developer entry points. `make example` and `make test` are the two commands of README's quick
# start; each installs what it needs (the pip `onnxruntime` wheel into `.venv/`, never
# system-wide) before running.

ORT_VERSION := 1.31.1
VENV := .venv
PYTHON ?= python3
# The ONNX Runtime shared library inside the venv's onnxruntime package.
ORT_LIB = $(shell scripts/ort-lib $(VENV)/bin/python)

.PHONY: example test ci setup lint image-test

setup: $(VENV)/.ready

$(VENV)/.ready: scripts/requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-dev.txt
	touch $@

# The main job on the bundled example: the whole release bundle into target/example/.
example: setup
	ORT_DYLIB_PATH="$(ORT_LIB)" cargo run --locked --release -- check \
		--config examples/tinydit/release.toml --out target/example

# The whole test suite: the tool and the emulators (whose judge runs the venv's huggingface_hub);
# the linters are installed too, since a test lints the README's example workflows.
# Then the pip wheel built (reusing the test build), installed into a fresh venv and run on the
# example with nothing set (scripts/wheel-test.sh).
test: setup $(VENV)/.lint-ready $(VENV)/.wheel-ready tests/browser/node_modules/.ready
	ORT_DYLIB_PATH="$(ORT_LIB)" TINYDIT_RELEASE_PYTHON="$(CURDIR)/$(VENV)/bin/python" \
		cargo test --locked --workspace
	PYTHON=$(VENV)/bin/python scripts/wheel-test.sh

# The browser test's driver (playwright-core, which drives the system `chromium` and downloads no
# browser) and onnxruntime-web, exactly as package-lock.json pins them, from the npm registry.
tests/browser/node_modules/.ready: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts
	touch $@

$(VENV)/.wheel-ready: scripts/requirements-wheel.txt $(VENV)/.ready
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-wheel.txt
	touch $@

$(VENV)/.lint-ready: scripts/requirements-lint.txt $(VENV)/.ready
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-lint.txt
	touch $@

# The action, workflows and Dockerfile, checked offline without a Docker engine: linters, a check
# that the cargo stages copy every file the build needs, the base image and action pins, the
# release scripts against a local repository, then the Dockerfile's steps run as plain commands
# against the debug binary.
lint: $(VENV)/.lint-ready
	$(VENV)/bin/actionlint
	$(VENV)/bin/zizmor --offline .
	$(VENV)/bin/hadolint Dockerfile Dockerfile.cuda
	scripts/dockerfile-copies.sh Dockerfile Dockerfile.cuda
	scripts/dockerfile-copies.sh --self-test
	scripts/base-images.sh list > /dev/null
	scripts/check-pins.sh
	scripts/test-release-scripts.sh
	cargo build --locked --quiet
	PYTHON=$(VENV)/bin/python scripts/dockerfile-steps.sh

# The action's real image: every stage of the Dockerfile built on local stand-ins of its base
# images (Debian from debootstrap, this machine's Rust toolchain, Debian's Python), then run as a
# runner runs a container action: a pull request's check, a tag push's publish against the
# emulators, a re-run after a fault, a modified tracked file. Needs root, a running Docker engine
# and debootstrap; no image registry.
image-test:
	scripts/image-test.sh

# Everything CI runs (.ci/run), with a closing count of the tests.
ci:
	bash .ci/run
