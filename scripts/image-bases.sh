#!/usr/bin/env bash
# Local stand-ins for the three base images of `Dockerfile`, for `scripts/image-test.sh` on a
# machine that cannot reach an image registry (test use only, never pushed):
#
#   tinydit-standin/debian:bookworm   Debian bookworm from `debootstrap` (minbase + ca-certificates)
#   tinydit-standin/rust:<version>    the same + gcc, libc6-dev and this machine's Rust toolchain
#                                     (the version the Dockerfile's `FROM rust:` names), laid out
#                                     as the official image has it (/usr/local/rustup, /usr/local/cargo)
#   tinydit-standin/python:3.11       the same + Debian's python3 and python3-pip, `python` -> python3
#
#   scripts/image-bases.sh            # build the stand-ins that are missing or out of date
#   scripts/image-bases.sh --force    # rebuild all three (the debootstrap tarballs stay cached)
#   scripts/image-bases.sh --print    # the three tags, one `role tag` per line, and nothing else
#
# Each stand-in trusts this machine's certificate authorities (its CA bundle is copied in, as the
# bundle and as a local CA that `update-ca-certificates` keeps) and carries its registry settings
# (/etc/pip.conf, ~/.cargo/config.toml, proxy and PIP_*/CARGO_* variables), or `pip` and `cargo`
# could not reach PyPI and crates.io from inside `docker build`. The debootstrap root file systems
# are cached as tarballs in `$IMAGE_CACHE` (default target/image-cache/, ignored by git).
#
# Environment: DOCKER (default docker), IMAGE_CACHE, DEBIAN_MIRROR (default: the Debian mirror apt
# uses here), RUSTUP_HOME (default ~/.rustup), CARGO_HOME (default ~/.cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
docker="${DOCKER:-docker}"
cache="${IMAGE_CACHE:-target/image-cache}"
prefix=tinydit-standin
suite=bookworm

# The versions the Dockerfile asks for: `FROM rust:1.95.0-...`, `FROM python:3.11.14-...`.
rust_version=$(sed -n 's/^FROM rust:\([0-9][0-9.]*\)-.*/\1/p' Dockerfile)
python_minor=$(sed -n 's/^FROM python:\([0-9]*\.[0-9]*\).*/\1/p' Dockerfile)
[ -n "$rust_version" ] && [ -n "$python_minor" ] || {
  echo "image-bases: Dockerfile has no \`FROM rust:X.Y.Z-...\` or \`FROM python:X.Y...\` line" >&2; exit 2; }
# Debian bookworm's python3 is 3.11: a stand-in for another minor version would be a look-alike.
[ "$python_minor" = 3.11 ] || {
  echo "image-bases: Dockerfile wants Python $python_minor; Debian $suite ships 3.11" >&2; exit 2; }

base_tag="$prefix/debian:$suite"
rust_tag="$prefix/rust:$rust_version"
python_tag="$prefix/python:$python_minor"

force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  --print) printf 'debian %s\nrust %s\npython %s\n' "$base_tag" "$rust_tag" "$python_tag"; exit 0 ;;
  *) echo "usage: $0 [--force|--print]" >&2; exit 2 ;;
esac

rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
toolchain="$rustup_home/toolchains/$rust_version-x86_64-unknown-linux-gnu"
[ -x "$toolchain/bin/cargo" ] || {
  echo "image-bases: no Rust $rust_version toolchain at \`$toolchain\` (rustup toolchain install $rust_version)" >&2; exit 2; }
rustup_bin=$(command -v rustup || true)
[ -n "$rustup_bin" ] || rustup_bin="$cargo_home/bin/rustup"
[ -x "$rustup_bin" ] || { echo "image-bases: no \`rustup\` binary" >&2; exit 2; }
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca_bundle" ] || { echo "image-bases: no CA bundle at \`$ca_bundle\`" >&2; exit 2; }

# The Debian mirror apt uses here (deb822 `URIs:` or one-line `deb URL bookworm`), not security.
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ' || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
mirror="${mirror%/}"


# ENV lines shared by the three stand-ins: registry settings of this machine, as `--change`s.
env_changes=()
add_env() { env_changes+=(--change "ENV $1=$2"); }
add_env SSL_CERT_FILE "$ca_bundle"
while IFS='=' read -r name value; do
  case "$name" in
    # PIP_FIND_LINKS names a folder of this machine, not of the image.
    PIP_FIND_LINKS|PIP_CERT) ;;
    PIP_*|CARGO_REGISTRIES_*|CARGO_REGISTRY_*|CARGO_HTTP_*|CARGO_NET_*|HTTP_PROXY|HTTPS_PROXY|NO_PROXY|http_proxy|https_proxy|no_proxy)
      add_env "$name" "$value" ;;
  esac
done < <(env)

# A stand-in is current when its label holds the hash of this script and of what it takes from
# this machine (CA bundle, registry settings, the toolchain's version).
key=$( {
  cat "$0" "$ca_bundle"
  cat /etc/pip.conf "$cargo_home/config.toml" "$cargo_home/config" 2> /dev/null || true
  printf '%s\n' "${env_changes[@]}"
  "$toolchain/bin/rustc" --version
} | sha256sum | cut -c1-16)
exists() {
  [ "$("$docker" image inspect --format '{{index .Config.Labels "tinydit.standin.key"}}' "$1" 2> /dev/null)" = "$key" ]
}

# A cached debootstrap tarball: `rootfs NAME PACKAGES` prints its path.
rootfs() {
  local name=$1 include=$2 tarball="$cache/$1-slim.tar"
  if [ ! -s "$tarball" ]; then
    local dir="$cache/$name.rootfs"
    rm -rf "$dir"
    mkdir -p "$cache/debs"
    echo "image-bases: debootstrap $suite ($include) from $mirror" >&2
    debootstrap --variant=minbase --include="$include" --cache-dir="$(realpath "$cache/debs")" \
      "$suite" "$dir" "$mirror" > "$cache/$name.debootstrap.log" 2>&1 || {
        tail -n 20 "$cache/$name.debootstrap.log" >&2; exit 1; }
    # The sources the official image has (the suite, its updates and security), and no caches.
    rm -f "$dir/etc/apt/sources.list"
    cat > "$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # What the official `-slim` images hold (debuerreotype's minimizing and slimify steps): apt
    # keeps no package caches, translations or suggested packages, and dpkg leaves out
    # documentation, manuals and translations, for what is installed now and in later layers.
    cat > "$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' > "$dir/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
    cat > "$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
    find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/groff/* "$dir"/usr/share/lintian/*
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin \
      "$dir"/var/log/*.log
    tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  echo "$tarball"
}

# Unpacks a tarball into a fresh folder with this machine's CA trust and pip settings added.
unpack() {
  local tarball=$1 dir=$2
  rm -rf "$dir"
  mkdir -p "$dir"
  tar --numeric-owner -C "$dir" -xf "$tarball"
  cp "$ca_bundle" "$dir/etc/ssl/certs/ca-certificates.crt"
  mkdir -p "$dir/usr/local/share/ca-certificates"
  cp "$ca_bundle" "$dir/usr/local/share/ca-certificates/this-machine.crt"
  if [ -f /etc/pip.conf ]; then cp /etc/pip.conf "$dir/etc/pip.conf"; fi
}

import() {
  local dir=$1 tag=$2; shift 2
  tar --numeric-owner -C "$dir" -c . \
    | "$docker" import "${env_changes[@]}" --change "LABEL tinydit.standin.key=$key" "$@" - "$tag" > /dev/null
  rm -rf "$dir"
  echo "image-bases: built $tag" >&2
}

work="$cache/work"

if [ "$force" = 1 ] || ! exists "$base_tag"; then
  unpack "$(rootfs debian-$suite ca-certificates)" "$work"
  import "$work" "$base_tag" --change 'CMD ["bash"]'
else
  echo "image-bases: $base_tag is current" >&2
fi

if [ "$force" = 1 ] || ! exists "$rust_tag"; then
  unpack "$(rootfs rust-$suite ca-certificates,gcc,libc6-dev)" "$work"
  # The toolchain without its 800 MB of HTML docs, and rustup's proxies, as in the official image.
  mkdir -p "$work/usr/local/rustup/toolchains" "$work/usr/local/cargo/bin"
  cp -a "$toolchain/." "$work/usr/local/rustup/toolchains/$rust_version-x86_64-unknown-linux-gnu"
  rm -rf "$work/usr/local/rustup/toolchains/$rust_version-x86_64-unknown-linux-gnu/share/doc"
  printf 'version = "12"\ndefault_toolchain = "%s-x86_64-unknown-linux-gnu"\nprofile = "minimal"\n' \
    "$rust_version" > "$work/usr/local/rustup/settings.toml"
  cp "$rustup_bin" "$work/usr/local/cargo/bin/rustup"
  for proxy in cargo rustc rustdoc; do ln -s rustup "$work/usr/local/cargo/bin/$proxy"; done
  for config in config.toml config; do
    if [ -f "$cargo_home/$config" ]; then cp "$cargo_home/$config" "$work/usr/local/cargo/$config"; fi
  done
  import "$work" "$rust_tag" \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV RUST_VERSION=$rust_version" --change 'CMD ["bash"]'
else
  echo "image-bases: $rust_tag is current" >&2
fi

if [ "$force" = 1 ] || ! exists "$python_tag"; then
  unpack "$(rootfs python-$suite ca-certificates,python3,python3-pip)" "$work"
  ln -s /usr/bin/python3 "$work/usr/local/bin/python"
  import "$work" "$python_tag" --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]'
else
  echo "image-bases: $python_tag is current" >&2
fi
