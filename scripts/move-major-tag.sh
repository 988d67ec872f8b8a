#!/usr/bin/env bash
# Moves the floating major tag (v1 for 1.Y.Z) to release vX.Y.Z, forward only:
#
#   scripts/move-major-tag.sh [--push] [--dry-run] 1.2.3
#
# Reads where the major tag points on the remote and which release tags vX.*.* name that commit:
# - a prerelease never moves it;
# - not there yet: it is created at vX.Y.Z's commit;
# - at an older release: it moves to vX.Y.Z's commit;
# - already at vX.Y.Z: nothing to do (a re-run);
# - at a newer release (vX.Y.Z is a backport): it stays, and the script says so and succeeds;
# - at a commit no release tag of that major names: an error (move it by hand after a look).
# The target must be a release commit, its `action.yml` pulling an image by digest (made by
# scripts/release-commit.sh); vX.Y.Z is read from the remote when it is not a local tag.
# Without --push the local tag moves only; with --push the remote's tag moves, with a lease on
# the commit it was read at (a concurrent move makes the push fail instead of being overwritten).
# --dry-run prints the writes instead. REMOTE as in scripts/release-lib.sh.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
. scripts/release-lib.sh

usage="usage: $0 [--push] [--dry-run] X.Y.Z"
args=()
for arg in "$@"; do
  case "$arg" in
    --push) push=true ;;
    --dry-run) dry_run=true ;;
    -*) usage_error "$usage" ;;
    *) args+=("$arg") ;;
  esac
done
[ ${#args[@]} -eq 1 ] || usage_error "$usage"
version="${args[0]}"
check_version "$version"
major="v${version%%.*}"
if is_prerelease "$version"; then
  say "$major stays: $version is a prerelease"
  exit 0
fi

# The release commit vX.Y.Z names, local or fetched.
if ! git rev-parse --verify --quiet "refs/tags/v$version" >/dev/null; then
  git fetch --quiet --no-tags "$remote" "refs/tags/v$version:refs/tags/v$version" \
    || die "no tag v$version here or on $remote: make the release commit first"
fi
target=$(git rev-parse "v$version^{commit}")
git show "$target:action.yml" | grep -Eq '^  image: docker://[^ ]+@sha256:[0-9a-f]{64}$' \
  || die "v$version ($target) is not a release commit: its action.yml does not pull an image by digest"
if $push; then
  found=$(remote_tag "v$version")
  [ "${found#* }" = "$target" ] || die "$remote's v$version is not this checkout's ($target): push the release tag first"
fi

# Where the major tag is now, and which release that is.
found=$(remote_tag "$major")
read -r current_direct current <<<"${found:-- -}"
releases=$(remote_releases)
if [ "$current" = "-" ]; then
  current_direct=""
  say "$major does not exist on $remote yet"
elif [ "$current" = "$target" ]; then
  say "$major is already at v$version ($target): nothing to do"
  exit 0
else
  current_version=$(awk -v c="$current" -v m="${major#v}" '$2 == c && index($1, m ".") == 1 { print $1 }' \
    <<<"$releases" | sort -V | tail -n 1)
  [ -n "$current_version" ] || die "$major points at $current, which no ${major}.Y.Z release tag on $remote names; move it by hand"
  if version_gt "$current_version" "$version"; then
    say "$major stays at v$current_version: v$version is older (a backport), and $major only moves forward"
    exit 0
  fi
  version_gt "$version" "$current_version" || die "$major is at v$current_version ($current), which is not v$version ($target)"
  say "$major moves forward from v$current_version to v$version"
fi

write git tag --force "$major" "$target"
where="here"
if $push; then
  write git push --quiet --force-with-lease="refs/tags/$major:$current_direct" "$remote" \
    "$target:refs/tags/$major"
  where="on $remote"
fi
$dry_run || say "moved $major to v$version ($target) $where"
