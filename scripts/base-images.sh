#!/usr/bin/env bash
# The base images of Dockerfile and Dockerfile.cuda, pinned by digest.
#
#   scripts/base-images.sh list     # one `name:tag digest` per FROM line
#   scripts/base-images.sh verify   # each pinned digest is still the one its tag names
#
# `verify` asks the registry (`docker buildx imagetools inspect`), so it runs in the release
# workflow, not offline; it fails naming every image whose tag has moved, so a release never
# ships on a base image nobody reviewed. Update a pin by replacing tag and digest together.
set -euo pipefail
cd "$(dirname "$0")/.."
docker="${DOCKER:-docker}"

pins() {
  sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile Dockerfile.cuda | sort -u | while read -r image; do
    case "$image" in
      *@sha256:*) ;;
      *) echo "base image \`$image\` is not pinned by digest" >&2; exit 1 ;;
    esac
    echo "${image%@*} ${image#*@}"
  done
}

case "${1:-}" in
  list) pins ;;
  verify)
    status=0
    while read -r tag digest; do
      current=$("$docker" buildx imagetools inspect "$tag" --format '{{.Manifest.Digest}}')
      if [ "$current" = "$digest" ]; then
        echo "ok      $tag $digest"
      else
        echo "moved   $tag: pinned $digest, the registry now says $current" >&2
        status=1
      fi
    done < <(pins)
    exit "$status"
    ;;
  *) echo "usage: $0 list|verify" >&2; exit 2 ;;
esac
