#!/usr/bin/env bash
# Makes the release commit of version X.Y.Z on top of the checked-out `main` commit, and tags it:
#
#   scripts/release-commit.sh [--push] [--dry-run] 1.2.3 sha256:<digest of ghcr.io/d-oit/tinydit-release:1.2.3>
#
# The release commit differs from `main` in one line: `action.yml` pulls the prebuilt CPU image by
# digest (`docker://ghcr.io/d-oit/tinydit-release@sha256:...`) instead of building `Dockerfile`, so
# a job that uses the action pulls instead of compiling. `main` keeps the Dockerfile, so CI's
# `uses: ./` self-test runs the code under review. The commit is on no branch; the annotated tag
# `vX.Y.Z` points at it, and the release workflow moves `v1` there at the very end
# (scripts/move-major-tag.sh). The work tree is left checked out at the release commit.
#
# Reproducible: author, committer and tagger are one fixed identity, and every date is the `main`
# commit's committer date, so the same `main` commit, version and digest make the same commit and
# tag ids on any machine at any time. That is what makes a re-run of a failed release job safe:
# - a local tag vX.Y.Z that is exactly this tag is kept (a re-run in the same checkout);
# - with --push, the remote is read first: no tag there, it is pushed (never forced); the
#   identical tag there, nothing is pushed and the script succeeds; any other tag vX.Y.Z there
#   is an error (a version is released once).
# --dry-run prints the push instead of doing it. The last line printed is the release commit id.
# REMOTE (default origin) and IMAGE as in scripts/release-lib.sh.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
. scripts/release-lib.sh

usage="usage: $0 [--push] [--dry-run] X.Y.Z sha256:DIGEST"
args=()
for arg in "$@"; do
  case "$arg" in
    --push) push=true ;;
    --dry-run) dry_run=true ;;
    -*) usage_error "$usage" ;;
    *) args+=("$arg") ;;
  esac
done
[ ${#args[@]} -eq 2 ] || usage_error "$usage"
version="${args[0]}"
digest="${args[1]}"
tag="v$version"
check_version "$version"
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || usage_error "digest \`$digest\` is not sha256:<64 hex digits>"

# The identity and dates of everything written below; nothing from the environment leaks in.
name="tinydit-release"
email="tinydit-release@users.noreply.github.com"
image_line="  image: docker://${image}@${digest}"

git diff --quiet HEAD -- || usage_error "the work tree has uncommitted changes"
base=$(git rev-parse HEAD)
if ! git show "$base:action.yml" | grep -qx '  image: Dockerfile'; then
  # A re-run in a checkout this script already moved to the release commit: start from `main`.
  local_tag=$(git rev-parse --verify --quiet "refs/tags/$tag^{commit}" || true)
  if [ "$local_tag" != "$base" ] || ! git show "$base:action.yml" | grep -qxF "$image_line"; then
    usage_error "action.yml at HEAD does not build \`Dockerfile\`: HEAD is not a main commit"
  fi
  base=$(git rev-parse "$base^")
fi
crate=$(git show "$base:Cargo.toml" | sed -n 's/^version = "\(.*\)"$/\1/p' | head -n 1)
[ "$crate" = "$version" ] || usage_error "Cargo.toml says $crate, not $version: bump it on main first"

date="@$(git show -s --format=%ct "$base") +0000"
export GIT_AUTHOR_NAME="$name" GIT_AUTHOR_EMAIL="$email" GIT_AUTHOR_DATE="$date"
export GIT_COMMITTER_NAME="$name" GIT_COMMITTER_EMAIL="$email" GIT_COMMITTER_DATE="$date"

# The tree: main's, with action.yml's image line replaced (built in a scratch index, so neither
# the index nor the work tree is touched until the final checkout).
index=$(mktemp)
trap 'rm -f "$index"' EXIT
blob=$(git show "$base:action.yml" | sed "s|^  image: Dockerfile\$|${image_line}|" | git hash-object -w --stdin)
mode=$(git ls-tree "$base" action.yml | cut -d' ' -f1)
GIT_INDEX_FILE="$index" git read-tree "$base"
GIT_INDEX_FILE="$index" git update-index --cacheinfo "$mode,$blob,action.yml"
tree=$(GIT_INDEX_FILE="$index" git write-tree)
commit=$(git commit-tree --no-gpg-sign -p "$base" \
  -m "Release v${version}: the action pulls ${image}@${digest}" "$tree")
tag_object=$(git mktag <<EOF
object $commit
type commit
tag $tag
tagger $name <$email> ${date#@}

tinydit-release v${version} (image ${image}@${digest})
EOF
)

existing=$(git rev-parse --verify --quiet "refs/tags/$tag" || true)
if [ -z "$existing" ]; then
  git update-ref "refs/tags/$tag" "$tag_object" ""
  say "made $tag: tag $tag_object, release commit $commit (on main $base)"
elif [ "$existing" = "$tag_object" ]; then
  say "kept $tag: the local tag is already this release ($tag_object)"
else
  die "a local tag $tag already exists ($existing), not this release ($tag_object); delete it if it is stale"
fi

if $push; then
  found=$(remote_tag "$tag")
  read -r remote_direct remote_commit <<<"$found" || true
  if [ -z "${remote_direct:-}" ]; then
    write git push --quiet "$remote" "refs/tags/$tag:refs/tags/$tag"
    $dry_run || say "pushed $tag to $remote"
  elif [ "$remote_direct" = "$tag_object" ]; then
    say "$remote already has $tag as this release ($tag_object): nothing to push"
  else
    die "$remote already has $tag at $remote_direct (commit $remote_commit), not this release \
($tag_object, commit $commit): version $version was released from other content"
  fi
fi

git checkout --quiet --detach "$commit"
echo "$commit"
