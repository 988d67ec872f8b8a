#!/usr/bin/env bash
# The release workflow's first step: refuses a release that must not start, before anything is
# built or pushed.
#
#   scripts/release-guard.sh 1.2.3
#
# Refuses (exit 1), naming the reason:
# - a version that is not X.Y.Z or X.Y.Z-pre, or not Cargo.toml's at the checked-out commit;
# - a run from any ref but `refs/heads/main` (GITHUB_REF; outside Actions, the checked-out branch);
# - a version already released: the tag vX.Y.Z exists on the remote (wherever it points), or the
#   image tag X.Y.Z or X.Y.Z-cuda exists in the registry. A failed release is finished by
#   re-running its failed jobs, which does not run this job again; a second dispatch of a released
#   version would rebuild the images and move their tags away from the digests the release names.
# The registry is asked with `docker buildx imagetools inspect` (DOCKER names the command): an
# answer is "present", a "not found" / "manifest unknown" / "name unknown" error is "absent", and
# any other error refuses too (log in first: the workflow does). Reads only; writes nothing.
# REMOTE, IMAGE as in scripts/release-lib.sh; RELEASE_BRANCH (default main).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
. scripts/release-lib.sh
docker="${DOCKER:-docker}"
branch="${RELEASE_BRANCH:-main}"

[ $# -eq 1 ] || usage_error "usage: $0 X.Y.Z"
version="$1"
check_version "$version"
crate=$(crate_version)
[ "$crate" = "$version" ] || die "Cargo.toml says $crate, not $version: bump it on $branch first"
say "ok version $version is Cargo.toml's"

ref="${GITHUB_REF:-$(git symbolic-ref --quiet HEAD || echo "a detached HEAD")}"
[ "$ref" = "refs/heads/$branch" ] || die "releases run from $branch only, not from $ref"
say "ok running from $ref"

found=$(remote_tag "v$version")
if [ -n "$found" ]; then
  read -r _ commit <<<"$found"
  die "v$version is already released: $remote has the tag at commit $commit. To finish a failed \
release, re-run its failed jobs; to release new changes, bump the version"
fi
say "ok $remote has no tag v$version"

for tag in "$version" "$version-cuda"; do
  if answer=$("$docker" buildx imagetools inspect "$image:$tag" --format '{{.Manifest.Digest}}' 2>&1); then
    die "the image $image:$tag already exists ($answer): version $version was built before"
  fi
  shopt -s nocasematch
  if [[ "$answer" =~ not\ found|manifest\ unknown|name\ unknown ]]; then
    shopt -u nocasematch
    say "ok the registry has no $image:$tag"
  else
    die "cannot tell whether $image:$tag exists, so nothing is built: $answer"
  fi
done
say "ok v$version may be released"
