# The CPU image of the GitHub Action (`ghcr.io/d-oit/tinydit-release:X.Y.Z`, linux/amd64 and
# linux/arm64). A builder stage compiles the binary (no ONNX Runtime needed: `ort` uses
# `load-dynamic`), a wheel stage extracts the ONNX Runtime library from the pip wheel, and the
# runtime stage holds only the binary, that library, CA certificates and `git`.
#
# Base images are pinned by digest (the multi-arch index of each tag, as published when pinned).
# The release workflow checks that each digest is still the one its tag names and fails otherwise
# (`scripts/base-images.sh verify`); Dependabot's `docker` ecosystem proposes updates.
# On `main`, `action.yml` builds this file (CI's `uses: ./` self-test runs the code under review);
# a release commit points `action.yml` at the pushed image by digest instead.

FROM rust:1.95.0-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The workspace's other member (test emulators) must be present for cargo to load the
# workspace; only the tool is built. `scripts/dockerfile-copies.sh` (in `make lint`) fails when
# a member or a file the build reads is not copied here.
COPY emulators ./emulators
COPY src ./src
COPY templates ./templates
COPY release.schema.json ./
RUN cargo build --release --locked --package tinydit-release --bin tinydit-release

FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS onnxruntime
ARG ORT_VERSION=1.31.1
RUN pip download --no-deps --only-binary=:all: --dest /wheel "onnxruntime==${ORT_VERSION}" \
    && python -m zipfile -e /wheel/onnxruntime-*.whl /unpacked \
    && mkdir -p /opt/onnxruntime/lib \
    && cp /unpacked/onnxruntime/capi/libonnxruntime.so.* /opt/onnxruntime/lib/

FROM debian:bookworm-20251229-slim@sha256:d5d3f9c23164ea16f31852f95bd5959aad1c5e854332fe00f7b3a20fcc9f635c
# `git` lets the tool tell whether tracked files in the workspace were modified (provenance);
# the workspace belongs to the runner's user, so the tool marks it safe itself.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --no-install-recommends -y ca-certificates git libstdc++6 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=onnxruntime /opt/onnxruntime/lib /opt/onnxruntime/lib
COPY --from=builder /src/target/release/tinydit-release /usr/local/bin/tinydit-release
ENV ORT_DYLIB_PATH=/opt/onnxruntime/lib/libonnxruntime.so.1.31.1
ENTRYPOINT ["/usr/local/bin/tinydit-release", "action"]
