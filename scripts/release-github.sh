#!/usr/bin/env bash
# The GitHub release of tag vX.Y.Z, made or finished, never made twice:
#
#   scripts/release-github.sh [--dry-run] 1.2.3 DIST_DIR NOTES_FILE
#
# 1. `gh release view`: no release yet, one is created as a draft (`--verify-tag`: the tag must
#    already be on GitHub) with NOTES_FILE; an existing release, draft or published, is reused.
# 2. Each file of DIST_DIR: uploaded when the release lacks it; skipped when the release has it
#    with the same size and sha256 (downloaded and compared); replaced (`--clobber`) when it
#    differs and the release is still a draft; an error when it differs on a published release.
# 3. A draft is published; it is marked Latest only when X.Y.Z is a stable version above every
#    other vX.Y.Z tag on the remote: a prerelease or a backport is never Latest. A release that
#    was already published is left as it is.
# --dry-run reads everything and prints the writes instead. GH names the gh command (the tests
# use a stand-in); gh finds the repository and token as usual (GH_REPO, GH_TOKEN). REMOTE as in
# scripts/release-lib.sh.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
. scripts/release-lib.sh
gh="${GH:-gh}"

usage="usage: $0 [--dry-run] X.Y.Z DIST_DIR NOTES_FILE"
args=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=true ;;
    -*) usage_error "$usage" ;;
    *) args+=("$arg") ;;
  esac
done
[ ${#args[@]} -eq 3 ] || usage_error "$usage"
version="${args[0]}" dist="${args[1]}" notes="${args[2]}"
tag="v$version"
check_version "$version"
[ -d "$dist" ] || usage_error "$dist is not a folder"
[ -f "$notes" ] || usage_error "$notes is not a file"
files=()
for file in "$dist"/*; do [ -f "$file" ] && files+=("$file"); done
[ ${#files[@]} -gt 0 ] || die "$dist has no files to release"

# Latest only for the highest stable version.
flags=()
kind=()
if is_prerelease "$version"; then
  kind=(--prerelease)
  flags=(--prerelease --latest=false)
  say "$tag is a prerelease: never Latest"
else
  releases=$(remote_releases)
  highest=$( (awk '{ print $1 }' <<<"$releases"; echo "$version") | grep . | sort -V | tail -n 1)
  if [ "$highest" = "$version" ]; then
    flags=(--latest)
    say "$tag is the highest release: Latest"
  else
    flags=(--latest=false)
    say "$tag is below v$highest (a backport): not Latest"
  fi
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# name<TAB>size of each asset the release has.
if draft=$("$gh" release view "$tag" --json isDraft --jq .isDraft 2>"$scratch/err"); then
  say "the release $tag exists (draft: $draft): reused"
  assets=$("$gh" release view "$tag" --json assets --jq '.assets[] | "\(.name)\t\(.size)"')
elif grep -qi 'not found' "$scratch/err"; then
  write "$gh" release create "$tag" --draft --verify-tag "${kind[@]}" \
    --title "tinydit-release $tag" --notes-file "$notes"
  $dry_run || say "created the draft release $tag"
  draft=true
  assets=""
else
  cat "$scratch/err" >&2
  die "cannot read the release $tag (gh release view)"
fi
status=0
for file in "${files[@]}"; do
  name=$(basename "$file")
  size=$(wc -c <"$file" | tr -d ' ')
  have=$(awk -F '\t' -v n="$name" '$1 == n { print $2 }' <<<"$assets")
  if [ -z "$have" ]; then
    write "$gh" release upload "$tag" "$file"
    $dry_run || say "uploaded $name"
    continue
  fi
  same=false
  if [ "$have" = "$size" ]; then
    rm -rf "$scratch/download"
    "$gh" release download "$tag" --pattern "$name" --dir "$scratch/download"
    if [ "$(sha256sum <"$scratch/download/$name")" = "$(sha256sum <"$file")" ]; then
      same=true
    fi
  fi
  if $same; then
    say "kept $name: the release has the same file"
  elif [ "$draft" = true ]; then
    write "$gh" release upload "$tag" "$file" --clobber
    $dry_run || say "replaced $name: the draft had a different file"
  else
    echo "error: the published release $tag has a different $name; a published asset is not replaced" >&2
    status=1
  fi
done
[ "$status" = 0 ] || exit 1

if [ "$draft" = true ]; then
  write "$gh" release edit "$tag" --draft=false "${flags[@]}"
  $dry_run || say "published $tag (${flags[*]})"
else
  say "$tag was already published: left as it is"
fi
