# The container of the GitHub Action: a builder stage compiles the binary (no ONNX Runtime needed:
# `ort` uses `load-dynamic`), a wheel stage extracts the ONNX Runtime library from the pip wheel,
# and the runtime stage holds only the binary, that library and CA certificates.
# TODO(#2): pin the three base images by digest once the release workflow can resolve them.

FROM rust:1.95.0-slim-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The workspace's other member (test emulators) must be present for cargo to load the
# workspace; only the tool is built.
COPY emulators ./emulators
COPY src ./src
COPY templates ./templates
COPY release.schema.json ./
RUN cargo build --release --locked -p tinydit-release --bin tinydit-release

FROM python:3.11.14-slim-bookworm AS onnxruntime
ARG ORT_VERSION=1.31.1
RUN pip download --no-deps --only-binary=:all: --dest /wheel "onnxruntime==${ORT_VERSION}" \
    && python -m zipfile -e /wheel/onnxruntime-*.whl /unpacked \
    && mkdir -p /opt/onnxruntime/lib \
    && cp /unpacked/onnxruntime/capi/libonnxruntime.so.* /opt/onnxruntime/lib/

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --no-install-recommends -y ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=onnxruntime /opt/onnxruntime/lib /opt/onnxruntime/lib
COPY --from=builder /src/target/release/tinydit-release /usr/local/bin/tinydit-release
ENV ORT_DYLIB_PATH=/opt/onnxruntime/lib/libonnxruntime.so.1.31.1
ENTRYPOINT ["/usr/local/bin/tinydit-release", "action"]
