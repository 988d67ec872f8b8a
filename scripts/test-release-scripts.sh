#!/usr/bin/env bash
# Tests the release machinery offline (`make lint` runs it): the scripts the release workflow
# runs, against a local bare repository standing in for GitHub, a stand-in `gh` keeping releases
# in a folder and a stand-in `docker` answering for the registry. No network.
#
#   scripts/test-release-scripts.sh
#
# Prints one `ok` line per check; the first failure prints what happened and exits 1.
set -euo pipefail
shopt -s inherit_errexit
repo="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d "${TMPDIR:-/tmp}/test-release-scripts.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A git of our own: no system or user configuration (signing, hooks, identities) leaks in.
export HOME="$work/home" GIT_CONFIG_NOSYSTEM=1
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GITHUB_REF REMOTE IMAGE GIT_CONFIG_COUNT \
  GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_AUTHOR_DATE GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL \
  GIT_COMMITTER_DATE
mkdir -p "$HOME" "$work/bin"
git config --global user.name "A Maintainer"
git config --global user.email "maintainer@example.com"
git config --global init.defaultBranch main
git config --global advice.detachedHead false

ok() { echo "ok   $*"; }
failed() {
  echo "FAIL $1" >&2
  [ -z "${out:-}" ] || printf '%s\n' "--- output (exit ${code:-?}):" "$out" >&2
  exit 1
}
# run CMD...: runs it, keeping its exit code in $code and stdout+stderr in $out.
run() {
  set +e
  out=$("$@" 2>&1)
  code=$?
  set -e
}
expect() { # CODE PATTERN DESCRIPTION: the last run exited CODE and printed PATTERN (grep -E)
  [ "$code" = "$1" ] || failed "$3: exit $code, expected $1"
  grep -Eq -- "$2" <<<"$out" || failed "$3: the output lacks /$2/"
  ok "$3"
}
origin_ref() { git --git-dir="$work/origin.git" rev-parse --verify --quiet "$1" || true; }

digest1="sha256:$(printf 'a%.0s' {1..64})"
digest2="sha256:$(printf 'b%.0s' {1..64})"

# --- The fake project: origin (bare) and a maintainer's clone with a `main` commit holding
# copies of action.yml, Cargo.toml and the release scripts.
git init --quiet --bare "$work/origin.git"
git clone --quiet "$work/origin.git" "$work/main" 2>/dev/null
mkdir -p "$work/main/scripts"
cp "$repo/action.yml" "$repo/Cargo.toml" "$work/main/"
for script in release-lib.sh release-commit.sh release-guard.sh release-github.sh move-major-tag.sh; do
  cp "$repo/scripts/$script" "$work/main/scripts/"
done
main_commit() { # VERSION: a new main commit whose Cargo.toml says VERSION, pushed
  (
    cd "$work/main"
    git checkout --quiet main 2>/dev/null || git checkout --quiet -b main
    sed -i "0,/^version = \".*\"\$/s//version = \"$1\"/" Cargo.toml
    echo "$1" >>CHANGES
    git add -A
    git commit --quiet -m "Version $1"
    git push --quiet origin main
    git rev-parse HEAD
  )
}
fresh_clone() { # NAME: a new clone of origin's main without tags, as a workflow's checkout
  rm -rf "${work:?}/${1:?}"
  git clone --quiet --no-tags "$work/origin.git" "$work/$1" 2>/dev/null
  echo "$work/$1"
}

# --- release-commit.sh: reproducible, idempotent, never two different tags of one version.
main1=$(main_commit 1.0.0)
c1=$(fresh_clone run1)
run "$c1/scripts/release-commit.sh" --push 1.0.0 "$digest1"
expect 0 "pushed v1.0.0" "release-commit makes the release commit and pushes v1.0.0"
commit1=$(tail -n 1 <<<"$out")
[ "$(origin_ref 'refs/tags/v1.0.0^{commit}')" = "$commit1" ] || failed "origin's v1.0.0 is not $commit1"
[ "$(git -C "$c1" rev-parse "$commit1^")" = "$main1" ] || failed "the release commit's parent is not main"
[ "$(git -C "$c1" diff --name-only "$main1" "$commit1")" = "action.yml" ] || failed "the release commit changes more than action.yml"
git -C "$c1" show "$commit1:action.yml" | grep -qx "  image: docker://ghcr.io/d-oit/tinydit-release@$digest1" \
  || failed "action.yml of the release commit does not pull the image by digest"
main_date=$(git -C "$c1" show -s --format=%ct "$main1")
dates=$(git -C "$c1" show -s --format='%at %ct' "$commit1")
tagger=$(git -C "$c1" cat-file tag v1.0.0 | sed -n 's/^tagger .*> \([0-9]*\) .*/\1/p')
[ "$dates $tagger" = "$main_date $main_date $main_date" ] || failed "dates $dates $tagger are not main's $main_date"
ok "the release commit changes action.yml only; author, committer and tagger dates are main's"

run "$c1/scripts/release-commit.sh" --push 1.0.0 "$digest1"
expect 0 "already has v1.0.0 as this release" "a re-run in the same checkout pushes nothing and succeeds"
[ "$(tail -n 1 <<<"$out")" = "$commit1" ] || failed "the re-run made $(tail -n 1 <<<"$out"), not $commit1"

sleep 1
c2=$(fresh_clone run2)
git -C "$c2" config user.name "Someone Else"
GIT_COMMITTER_DATE="2001-02-03T04:05:06Z" GIT_AUTHOR_NAME="Another" \
  run "$c2/scripts/release-commit.sh" --push 1.0.0 "$digest1"
expect 0 "already has v1.0.0 as this release" "a re-run on a fresh checkout, later, with another identity in the environment"
[ "$(tail -n 1 <<<"$out")" = "$commit1" ] || failed "the fresh re-run made $(tail -n 1 <<<"$out"), not $commit1"
[ "$(git -C "$c2" rev-parse v1.0.0)" = "$(origin_ref refs/tags/v1.0.0)" ] || failed "the tag objects differ"
ok "release-commit twice: the same commit id ($commit1) and the same tag object"

c3=$(fresh_clone run3)
before=$(origin_ref refs/tags/v1.0.0)
run "$c3/scripts/release-commit.sh" --push 1.0.0 "$digest2"
expect 1 "already has v1.0.0 at .*released from other content" "the same version with another image digest is refused"
[ "$(origin_ref refs/tags/v1.0.0)" = "$before" ] || failed "origin's v1.0.0 moved"

git -C "$c1" checkout --quiet "$main1"
run "$c1/scripts/release-commit.sh" 1.0.0 "$digest2"
expect 1 "a local tag v1.0.0 already exists" "a local tag of other content is not replaced"
run "$c3/scripts/release-commit.sh" --push 9.9.9 "$digest1"
expect 2 "Cargo.toml says 1.0.0, not 9.9.9" "a version other than Cargo.toml's is refused"

# --- release-guard.sh: only from main, only a version not yet released anywhere.
cat >"$work/bin/docker" <<'EOF'
#!/usr/bin/env bash
# Stand-in for `docker buildx imagetools inspect REF --format ...`: REF present when listed in
# $REGISTRY; $REGISTRY_ERROR, when set, is the registry's answer to everything.
[ "$1 $2 $3" = "buildx imagetools inspect" ] || { echo "fake docker: $*" >&2; exit 2; }
if [ -n "${REGISTRY_ERROR:-}" ]; then echo "ERROR: $REGISTRY_ERROR" >&2; exit 1; fi
if grep -qxF "$4" "$REGISTRY" 2>/dev/null; then echo "sha256:$(printf 'c%.0s' {1..64})"; exit 0; fi
echo "ERROR: $4: not found" >&2
exit 1
EOF
chmod +x "$work/bin/docker"
export DOCKER="$work/bin/docker" REGISTRY="$work/registry"
echo "ghcr.io/d-oit/tinydit-release:1.0.0" >"$REGISTRY"

guard=$(fresh_clone guard)
GITHUB_REF=refs/heads/main run "$guard/scripts/release-guard.sh" 1.0.0
expect 1 "v1.0.0 is already released" "the guard refuses a version whose tag is on the remote"
main_commit 1.1.0 >/dev/null
guard=$(fresh_clone guard)
GITHUB_REF=refs/heads/main run "$guard/scripts/release-guard.sh" 1.1.0
expect 0 "ok v1.1.0 may be released" "the guard lets a new version through"
GITHUB_REF=refs/heads/feature run "$guard/scripts/release-guard.sh" 1.1.0
expect 1 "from main only, not from refs/heads/feature" "the guard refuses a run from another branch"
git -C "$guard" checkout --quiet --detach
run "$guard/scripts/release-guard.sh" 1.1.0
expect 1 "not from a detached HEAD" "outside Actions, the guard refuses a checkout that is not on main"
git -C "$guard" checkout --quiet main
GITHUB_REF=refs/heads/main run "$guard/scripts/release-guard.sh" 1.2.0
expect 1 "Cargo.toml says 1.1.0, not 1.2.0" "the guard refuses a version that is not Cargo.toml's"
echo "ghcr.io/d-oit/tinydit-release:1.1.0-cuda" >>"$REGISTRY"
GITHUB_REF=refs/heads/main run "$guard/scripts/release-guard.sh" 1.1.0
expect 1 "image ghcr.io/d-oit/tinydit-release:1.1.0-cuda already exists" "the guard refuses a version whose image tag is in the registry"
sed -i '$d' "$REGISTRY"
REGISTRY_ERROR="denied" GITHUB_REF=refs/heads/main run "$guard/scripts/release-guard.sh" 1.1.0
expect 1 "cannot tell whether .*denied" "the guard refuses when the registry does not say"
GITHUB_REF=refs/heads/main run "$guard/scripts/release-guard.sh" '1.1.0;true'
expect 2 "is not X.Y.Z" "the guard refuses a malformed version"

# --- move-major-tag.sh: v1 only moves forward, to release commits.
run "$c1/scripts/move-major-tag.sh" --push 1.0.0
expect 0 "moved v1 to v1.0.0" "the major tag is created at the first release"
[ "$(origin_ref 'refs/tags/v1^{commit}')" = "$commit1" ] || failed "origin's v1 is not v1.0.0's commit"
run "$c1/scripts/move-major-tag.sh" --push 1.0.0
expect 0 "already at v1.0.0" "moving it again to the same release does nothing"

r2=$(fresh_clone run4)
run "$r2/scripts/release-commit.sh" --push 1.1.0 "$digest2"
expect 0 "pushed v1.1.0" "release 1.1.0 made"
commit2=$(tail -n 1 <<<"$out")
run "$r2/scripts/move-major-tag.sh" --push --dry-run 1.1.0
expect 0 "would run: git push" "a dry run of the move prints the push"
[ "$(origin_ref 'refs/tags/v1^{commit}')" = "$commit1" ] || failed "the dry run moved origin's v1"
run "$r2/scripts/move-major-tag.sh" --push 1.1.0
expect 0 "moves forward from v1.0.0 to v1.1.0" "the major tag moves forward"
[ "$(origin_ref 'refs/tags/v1^{commit}')" = "$commit2" ] || failed "origin's v1 is not v1.1.0's commit"

# A backport: 1.0.1 released after 1.1.0, from a branch of 1.0.0's main commit.
(cd "$work/main" && git checkout --quiet -b release-1.0 "$main1" && git push --quiet origin release-1.0)
sed -i '0,/^version = ".*"$/s//version = "1.0.1"/' "$work/main/Cargo.toml"
(cd "$work/main" && git commit --quiet -am "Version 1.0.1" && git push --quiet origin release-1.0)
back=$(fresh_clone backport)
git -C "$back" checkout --quiet release-1.0
GITHUB_REF=refs/heads/release-1.0 run "$back/scripts/release-guard.sh" 1.0.1
expect 1 "from main only" "a backport is dispatched from main too (the guard refuses its branch)"
run "$back/scripts/release-commit.sh" --push 1.0.1 "$digest1"
expect 0 "pushed v1.0.1" "backport 1.0.1 made"
run "$back/scripts/move-major-tag.sh" --push 1.0.1
expect 0 "v1 stays at v1.1.0: v1.0.1 is older" "the major tag refuses to move backwards to a backport"
[ "$(origin_ref 'refs/tags/v1^{commit}')" = "$commit2" ] || failed "the backport moved origin's v1"
run "$back/scripts/move-major-tag.sh" --push 1.2.0-rc.1
expect 0 "v1 stays: 1.2.0-rc.1 is a prerelease" "a prerelease never moves the major tag"

git -C "$work/main" tag v1.3.0 "$main1"
git -C "$work/main" push --quiet origin v1.3.0
run "$r2/scripts/move-major-tag.sh" --push 1.3.0
expect 1 "is not a release commit" "the major tag only moves to a release commit"
git --git-dir="$work/origin.git" tag --delete v1.3.0 >/dev/null
git --git-dir="$work/origin.git" tag --force v1 "$main1" >/dev/null
run "$r2/scripts/move-major-tag.sh" --push 1.1.0
expect 1 "which no v1.Y.Z release tag on origin names" "a major tag at an unknown commit is left for a person"
git --git-dir="$work/origin.git" tag --force v1 "$commit2" >/dev/null

# --- release-github.sh: one release per version, reused by a re-run; Latest only when highest.
cat >"$work/bin/gh" <<'EOF'
#!/usr/bin/env bash
# Stand-in for the `gh release` commands release-github.sh runs; releases live in $GH_STATE.
set -euo pipefail
echo "$*" >>"$GH_STATE/calls"
[ "$1" = release ] || { echo "fake gh: $*" >&2; exit 2; }
command=$2 tag=$3
shift 3
dir="$GH_STATE/releases/$tag"
case "$command" in
  view)
    [ -d "$dir" ] || { echo "release not found" >&2; exit 1; }
    case "$1 $2" in
      "--json isDraft") cat "$dir/draft" ;;
      "--json assets")
        for file in "$dir"/assets/*; do
          [ -f "$file" ] && printf '%s\t%s\n' "$(basename "$file")" "$(wc -c <"$file")"
        done
        ;;
      *) exit 2 ;;
    esac
    ;;
  create)
    [ ! -d "$dir" ] || { echo "a release with the same tag name already exists: $tag" >&2; exit 1; }
    git ls-remote --exit-code "$GH_REMOTE" "refs/tags/$tag" >/dev/null || { echo "tag $tag doesn't exist in the repo" >&2; exit 1; }
    mkdir -p "$dir/assets"
    echo true >"$dir/draft"
    echo "$*" >"$dir/created-with"
    ;;
  upload)
    clobber=false
    for arg in "$@"; do [ "$arg" = --clobber ] && clobber=true; done
    for file in "$@"; do
      [ "$file" != --clobber ] || continue
      if [ -e "$dir/assets/$(basename "$file")" ] && ! $clobber; then
        echo "asset under the same name already exists: $(basename "$file")" >&2
        exit 1
      fi
      cp "$file" "$dir/assets/"
    done
    ;;
  download) mkdir -p "$4" && cp "$dir/assets/$2" "$4/" ;;
  edit)
    for arg in "$@"; do
      case "$arg" in
        --draft=false) echo false >"$dir/draft" ;;
        --latest) echo true >"$dir/latest" ;;
        --latest=false) echo false >"$dir/latest" ;;
      esac
    done
    ;;
  *) exit 2 ;;
esac
EOF
chmod +x "$work/bin/gh"
export GH="$work/bin/gh" GH_STATE="$work/gh" GH_REMOTE="$work/origin.git"
mkdir -p "$GH_STATE/releases" "$work/dist"
echo "archive one" >"$work/dist/a.tar.gz"
echo "archive two" >"$work/dist/b.tar.gz"
echo "notes" >"$work/notes.md"
calls() { grep -c -- "$1" "$GH_STATE/calls" || true; }

run "$r2/scripts/release-github.sh" --dry-run 1.1.0 "$work/dist" "$work/notes.md"
expect 0 "would run: .* release create v1.1.0 --draft" "a dry run of the GitHub release prints the writes"
[ ! -e "$GH_STATE/releases/v1.1.0" ] || failed "the dry run made a release"
run "$r2/scripts/release-github.sh" 1.1.0 "$work/dist" "$work/notes.md"
expect 0 "published v1.1.0 \(--latest\)" "the GitHub release is made as a draft, filled, then published as Latest"
[ "$(cat "$GH_STATE/releases/v1.1.0/draft") $(cd "$GH_STATE/releases/v1.1.0/assets" && echo *)" = "false a.tar.gz b.tar.gz" ] \
  || failed "the release is not published with both assets"
: >"$GH_STATE/calls"
run "$r2/scripts/release-github.sh" 1.1.0 "$work/dist" "$work/notes.md"
expect 0 "already published: left as it is" "a re-run reuses the published release"
[ "$(calls create) $(calls upload) $(calls edit)" = "0 0 0" ] || failed "the re-run wrote: $(cat "$GH_STATE/calls")"
grep -q "kept a.tar.gz" <<<"$out" || failed "the re-run did not compare a.tar.gz"
ok "a re-run creates, uploads and edits nothing"

echo "changed" >"$work/dist/b.tar.gz"
run "$r2/scripts/release-github.sh" 1.1.0 "$work/dist" "$work/notes.md"
expect 1 "published release v1.1.0 has a different b.tar.gz" "a published asset is never replaced"

# A run that died after the draft and one asset, whose archive was then built again differently.
mkdir -p "$GH_STATE/releases/v1.0.0/assets"
echo true >"$GH_STATE/releases/v1.0.0/draft"
echo "half" >"$GH_STATE/releases/v1.0.0/assets/a.tar.gz"
: >"$GH_STATE/calls"
run "$c1/scripts/release-github.sh" 1.0.0 "$work/dist" "$work/notes.md"
expect 0 "replaced a.tar.gz: the draft had a different file" "a re-run finishes a draft: replaces the differing asset"
grep -q "uploaded b.tar.gz" <<<"$out" || failed "the missing asset was not uploaded"
[ "$(calls create)" = 0 ] || failed "the draft was created again"
grep -q "below v1.1.0 (a backport): not Latest" <<<"$out" || failed "1.0.0 is not recognised as below 1.1.0"
[ "$(cat "$GH_STATE/releases/v1.0.0/latest")" = false ] || failed "a backport was marked Latest"
ok "an existing draft is reused, and a release below the highest is not Latest"

run "$back/scripts/release-github.sh" 1.0.1 "$work/dist" "$work/notes.md"
expect 0 "v1.0.1 is below v1.1.0 \(a backport\): not Latest" "backport 1.0.1 is published, not Latest"
[ "$(cat "$GH_STATE/releases/v1.0.1/latest")" = false ] || failed "the backport was marked Latest"
(cd "$back" && git tag v1.2.0-rc.1 HEAD && git push --quiet origin v1.2.0-rc.1)
run "$back/scripts/release-github.sh" 1.2.0-rc.1 "$work/dist" "$work/notes.md"
expect 0 "prerelease: never Latest" "a prerelease is never Latest"
grep -q -- "--prerelease" "$GH_STATE/releases/v1.2.0-rc.1/created-with" || failed "the prerelease was not created as one"
[ "$(cat "$GH_STATE/releases/v1.2.0-rc.1/latest")" = false ] || failed "the prerelease was marked Latest"

# --- base-images.sh: unpinned or moved base images fail.
base="$repo/scripts/base-images.sh"
run "$base" list
expect 0 "^rust:.* sha256:[0-9a-f]{64}$" "base-images list: every FROM of both Dockerfiles pinned"
pins="$out"
sed 's/@sha256:[0-9a-f]*//' "$repo/Dockerfile.cuda" >"$work/Dockerfile.unpinned"
run "$base" list "$work/Dockerfile.unpinned"
expect 1 "Dockerfile.unpinned:[0-9]+: base image .debian:.* is not pinned by digest" "base-images list fails on an unpinned Dockerfile copy"
[ "$(grep -c 'is not pinned' <<<"$out")" = 3 ] || failed "not every unpinned image was named"
# shellcheck disable=SC2016  # the stand-in's own expansions
{
  echo '#!/usr/bin/env bash'
  echo 'case "$4" in'
  while read -r tag digest; do echo "  $tag) echo $digest ;;"; done <<<"$pins"
  echo '  *) echo "sha256:$(printf "0%.0s" {1..64})" ;;'
  echo 'esac'
} >"$work/bin/registry-agrees"
chmod +x "$work/bin/registry-agrees"
DOCKER="$work/bin/registry-agrees" run "$base" verify
expect 0 "^ok +debian:" "base-images verify passes when the registry agrees with every pin"
DOCKER="$work/bin/registry-agrees" run "$base" verify "$work/Dockerfile.unpinned"
expect 1 "is not pinned by digest" "base-images verify fails on an unpinned image even when the registry answers"
grep -q "^ok " <<<"$out" && failed "verify went on after an unpinned image"
sed "s/@sha256:[0-9a-f]*\( AS\)/@sha256:$(printf 'e%.0s' {1..64})\1/" "$repo/Dockerfile.cuda" >"$work/Dockerfile.moved"
DOCKER="$work/bin/registry-agrees" run "$base" verify "$work/Dockerfile.moved"
expect 1 "moved +rust:" "base-images verify fails on a moved image"
DOCKER=false run "$base" verify
expect 1 "unknown +debian:.*did not answer" "base-images verify fails when the registry does not answer"

# --- check-pins.sh: a wrong pin is found offline and online.
pinsroot="$work/pins"
mkdir -p "$pinsroot/scripts" "$pinsroot/.github/workflows" "$work/remotes/actions"
cp "$repo/scripts/check-pins.sh" "$pinsroot/scripts/"
git init --quiet "$work/remotes/actions/checkout"
(cd "$work/remotes/actions/checkout" && git commit --quiet --allow-empty -m one && git tag v1.0.0 \
  && git commit --quiet --allow-empty -m two && git tag --annotate -m two v1.1.0)
one=$(git -C "$work/remotes/actions/checkout" rev-parse 'v1.0.0^{commit}')
two=$(git -C "$work/remotes/actions/checkout" rev-parse 'v1.1.0^{commit}')
printf 'actions/checkout v1.0.0 %s\nactions/checkout v1.1.0 %s\n' "$one" "$two" >"$pinsroot/scripts/action-pins.txt"
workflow() { # the body of the pinned test workflow's steps
  printf 'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n%s\n' "$1" >"$pinsroot/.github/workflows/a.yml"
}
workflow "      - uses: actions/checkout@$one # v1.0.0
      - uses: actions/checkout@$two # v1.1.0
      - uses: ./"
export PINS_REMOTE="file://$work/remotes/"
run "$pinsroot/scripts/check-pins.sh" --root "$pinsroot" --online --mirrors "$work/remotes"
expect 0 "ok online: actions/checkout v1.1.0 = $two" "check-pins: real pins pass offline, against a local copy and online (annotated tag peeled)"
workflow "      - uses: actions/checkout@$two # v1.0.0
      - uses: actions/checkout@$two # v1.1.0"
run "$pinsroot/scripts/check-pins.sh" --root "$pinsroot"
expect 1 "a.yml:6: actions/checkout v1.0.0 is $one in scripts/action-pins.txt, not $two" "check-pins: a commit of another version is found offline"
workflow "      - uses: actions/checkout@$one
      - uses: actions/checkout@v1.1.0 # v1.1.0
      - uses: d-oit/tinydit-release@v1"
run "$pinsroot/scripts/check-pins.sh" --root "$pinsroot"
expect 1 "has no version comment" "check-pins: a pin without its version comment fails"
grep -q "is not pinned by a full commit id" <<<"$out" || failed "a tag-only uses: passed"
grep -q "run their own action as .uses: ./." <<<"$out" || failed "the own action by tag passed in .github/workflows"
workflow "      - uses: actions/checkout@$one # v1.0.0
      - uses: actions/checkout@$two # v1.1.0"
printf 'actions/checkout v1.0.0 %s\nactions/checkout v1.1.0 %s\n' "$one" "$one" >"$pinsroot/scripts/action-pins.txt"
sed -i "s/$two # v1.1.0/$one # v1.1.0/" "$pinsroot/.github/workflows/a.yml"
run "$pinsroot/scripts/check-pins.sh" --root "$pinsroot" --online
expect 1 "actions/checkout v1.1.0 is $two on .*, not $one" "check-pins --online: a pin list that names the wrong commit fails"

echo "ok   all release-script checks passed"
