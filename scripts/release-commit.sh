#!/usr/bin/env bash
# Makes the release commit of version X.Y.Z on top of the checked-out commit, and tags it:
#
#   scripts/release-commit.sh 1.2.3 sha256:<digest of ghcr.io/d-oit/tinydit-release:1.2.3>
#
# The release commit differs from `main` in one line: `action.yml` pulls the prebuilt CPU image by
# digest (`docker://ghcr.io/d-oit/tinydit-release@sha256:...`) instead of building `Dockerfile`, so
# a job that uses the action pulls instead of compiling. `main` keeps the Dockerfile, so CI's
# `uses: ./` self-test runs the code under review. The commit is not on any branch; the tag
# `vX.Y.Z` (annotated) points at it, and the release workflow moves `v1` there at the very end.
# Nothing is pushed here.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:?usage: $0 X.Y.Z sha256:DIGEST}"
digest="${2:?usage: $0 X.Y.Z sha256:DIGEST}"
image="${IMAGE:-ghcr.io/d-oit/tinydit-release}"

[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] \
  || { echo "version \`$version\` is not X.Y.Z or X.Y.Z-pre (no build metadata)" >&2; exit 2; }
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] \
  || { echo "digest \`$digest\` is not sha256:<64 hex digits>" >&2; exit 2; }
crate=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ "$crate" = "$version" ] \
  || { echo "Cargo.toml says $crate, not $version: bump it on main first" >&2; exit 2; }
git diff --quiet HEAD -- || { echo "the work tree has uncommitted changes" >&2; exit 2; }
grep -q '^  image: Dockerfile$' action.yml \
  || { echo "action.yml does not build \`Dockerfile\`: is this already a release commit?" >&2; exit 2; }

sed -i "s|^  image: Dockerfile\$|  image: docker://${image}@${digest}|" action.yml
git add action.yml
git -c user.name="${GIT_AUTHOR_NAME:-tinydit-release}" \
    -c user.email="${GIT_AUTHOR_EMAIL:-tinydit-release@users.noreply.github.com}" \
    commit --quiet -m "Release v${version}: the action pulls ${image}@${digest}"
git -c user.name="${GIT_AUTHOR_NAME:-tinydit-release}" \
    -c user.email="${GIT_AUTHOR_EMAIL:-tinydit-release@users.noreply.github.com}" \
    tag --annotate "v${version}" -m "tinydit-release v${version} (image ${image}@${digest})"
git rev-parse "v${version}^{commit}"
