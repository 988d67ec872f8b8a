# shellcheck shell=bash disable=SC2034  # (the variables are for the scripts that source this file)
# Shared by the release scripts (release-guard.sh, release-commit.sh, release-github.sh,
# move-major-tag.sh); sourced, not run. Each of them reads the remote before it writes, prints
# what it did or, with --dry-run, what it would do, and writes nothing a re-run could not repeat.
#
# Environment: REMOTE (git remote or URL, default origin); IMAGE (default
# ghcr.io/d-oit/tinydit-release). Pushes authenticate the way git does (the release workflow
# passes GitHub's token as an http.extraheader through GIT_CONFIG_COUNT/KEY/VALUE).

remote="${REMOTE:-origin}"
image="${IMAGE:-ghcr.io/d-oit/tinydit-release}"
dry_run=false
push=false

die() { echo "error: $*" >&2; exit 1; }
usage_error() { echo "$*" >&2; exit 2; }
say() { echo "$*"; }

# X.Y.Z or X.Y.Z-pre (no build metadata); prints nothing.
check_version() {
  [[ "$1" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]] \
    || usage_error "version \`$1\` is not X.Y.Z or X.Y.Z-pre (no build metadata)"
}
is_prerelease() { [[ "$1" == *-* ]]; }

# Cargo.toml's [package] version at the checked-out commit.
crate_version() { sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1; }

# `DIRECT PEELED` of refs/tags/TAG on the remote (PEELED = the commit; for a lightweight tag both
# are the commit); empty when the remote has no such tag. Fails when the remote cannot be read.
remote_tag() {
  local refs direct peeled
  refs=$(git ls-remote "$remote" "refs/tags/$1" "refs/tags/$1^{}") \
    || die "cannot read the tags of \`$remote\` (git ls-remote)"
  direct=$(awk -v r="refs/tags/$1" '$2 == r { print $1 }' <<<"$refs")
  peeled=$(awk -v r="refs/tags/$1^{}" '$2 == r { print $1 }' <<<"$refs")
  [ -z "$direct" ] || echo "$direct ${peeled:-$direct}"
}

# Every stable release tag on the remote: `VERSION COMMIT` (peeled), one per line.
remote_releases() {
  local refs
  refs=$(git ls-remote --tags "$remote") || die "cannot read the tags of \`$remote\` (git ls-remote)"
  awk '
    { name = $2; sub(/^refs\/tags\//, "", name) }
    name ~ /^v[0-9]+\.[0-9]+\.[0-9]+(\^\{\})?$/ {
      peeled = sub(/\^\{\}$/, "", name)
      if (peeled || !(name in commit)) commit[name] = $1
    }
    END { for (n in commit) print substr(n, 2), commit[n] }' <<<"$refs"
}

# True when stable version $1 is greater than stable version $2 (numeric X.Y.Z).
version_gt() {
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$1" ]
}

# Runs a writing command, or prints it under --dry-run.
write() {
  if $dry_run; then
    echo "would run: $*"
  else
    "$@"
  fi
}
