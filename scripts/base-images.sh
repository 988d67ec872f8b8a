#!/usr/bin/env bash
# The base images of Dockerfile and Dockerfile.cuda, pinned by digest.
#
#   scripts/base-images.sh list   [DOCKERFILE...]  # one `name:tag digest` per base image
#   scripts/base-images.sh verify [DOCKERFILE...]  # each pinned digest is still the one its tag names
#
# Both fail, naming file and line, on any base image that is not `name:tag@sha256:<64 hex>`
# (no digest, no tag to verify against, or a build argument in the name); a `FROM` of an earlier
# stage or `scratch` is not an image. `verify` asks the registry (`docker buildx imagetools
# inspect`), so it runs in the release workflow, not offline; it fails naming every image whose
# tag has moved or that the registry did not answer for, so a release never ships on a base image
# nobody reviewed. Update a pin by replacing tag and digest together. DOCKERFILEs default to
# Dockerfile and Dockerfile.cuda; DOCKER names the docker command (the tests use a stand-in).
set -euo pipefail
shopt -s inherit_errexit
command="${1:-}"
files=()
for file in "${@:2}"; do
  case "$file" in /*) files+=("$file") ;; *) files+=("$PWD/$file") ;; esac
done
cd "$(dirname "$0")/.."
[ ${#files[@]} -gt 0 ] || files=(Dockerfile Dockerfile.cuda)
docker="${DOCKER:-docker}"

# `FILE:LINE IMAGE` for each FROM line whose image is not an earlier stage or scratch.
from_lines() {
  awk '
    FNR == 1 { split("", stages) }
    toupper($1) == "FROM" {
      i = 2
      while ($i ~ /^--/) i++
      image = $i
      known = (tolower(image) in stages) || tolower(image) == "scratch"
      if (tolower($(i + 1)) == "as") stages[tolower($(i + 2))] = 1
      if (!known) print FILENAME ":" FNR, image
    }' "$@"
}

# `name:tag digest` for each base image, sorted and unique; fails after naming every bad pin.
pins() {
  local lines where image name bad=0 out=""
  lines=$(from_lines "$@") || return 1
  [ -n "$lines" ] || { echo "no FROM line in $*" >&2; return 1; }
  while read -r where image; do
    name="${image%@*}"
    if [[ "$image" == *'$'* ]]; then
      echo "$where: base image \`$image\` comes from a build argument; write the pin out" >&2
      bad=1
    elif [[ ! "$image" =~ @sha256:[0-9a-f]{64}$ ]]; then
      echo "$where: base image \`$image\` is not pinned by digest (name:tag@sha256:...)" >&2
      bad=1
    elif [[ "${name##*/}" != *:* ]]; then
      echo "$where: base image \`$image\` names no tag to verify its digest against" >&2
      bad=1
    else
      out+="$name ${image#*@}"$'\n'
    fi
  done <<<"$lines"
  [ "$bad" = 0 ] || return 1
  printf '%s' "$out" | sort -u
}

case "$command" in
  list) pins "${files[@]}" ;;
  verify)
    # Collected first, so that an unpinned image stops the script here (`set -e`).
    list=$(pins "${files[@]}")
    status=0
    while read -r tag digest; do
      if ! current=$("$docker" buildx imagetools inspect "$tag" --format '{{.Manifest.Digest}}'); then
        echo "unknown $tag: the registry did not answer" >&2
        status=1
      elif [ "$current" = "$digest" ]; then
        echo "ok      $tag $digest"
      else
        echo "moved   $tag: pinned $digest, the registry now says $current" >&2
        status=1
      fi
    done <<<"$list"
    exit "$status"
    ;;
  *) echo "usage: $0 list|verify [DOCKERFILE...]" >&2; exit 2 ;;
esac
