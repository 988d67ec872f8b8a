#!/usr/bin/env bash
# Every `uses:` of a third-party action names a real commit of that action at the version its
# comment says.
#
#   scripts/check-pins.sh                  # offline: the workflows against scripts/action-pins.txt
#   scripts/check-pins.sh --mirrors DIR    # also each pin against local git copies of the actions
#   scripts/check-pins.sh --online         # also each pin against GitHub (`git ls-remote`)
#
# Offline (`make lint`): every `uses:` in .github/workflows/*.yml, examples/workflows/*.yml,
# action.yml and README.md must be `OWNER/REPO[/PATH]@<40-hex commit> # <version>`, and the
# triple (OWNER/REPO, version, commit) must be a line of scripts/action-pins.txt; every line
# there must be used. Local actions (`./`) are skipped; this repository's own action may appear
# as `@v1` in the examples and README (what users copy; README says how to pin it), never in
# .github/workflows. A `docker://` image must be pinned by digest.
#
# --mirrors DIR: for each pin whose repository has a git copy under DIR (DIR/OWNER+REPO/repo,
# DIR/OWNER+REPO, DIR/OWNER/REPO.git or DIR/OWNER/REPO), the tag VERSION must peel to the commit.
# --online: for each pin, `git ls-remote https://github.com/OWNER/REPO refs/tags/VERSION` (the
# peeled `^{}` line for an annotated tag) must name the commit; the release workflow runs this
# before anything is built or pushed. PINS_REMOTE replaces `https://github.com/` (the tests aim
# it at local repositories).
#
# --root DIR checks another checkout (default: this one). Prints one `ok` line per check and one
# line per failure on stderr; exits 1 if anything failed, 2 on bad usage.
set -euo pipefail
shopt -s inherit_errexit

root="$(cd "$(dirname "$0")/.." && pwd)"
online=false
mirrors=""
self="${PINS_SELF:-d-oit/tinydit-release}"
remote="${PINS_REMOTE:-https://github.com/}"
while [ $# -gt 0 ]; do
  case "$1" in
    --online) online=true ;;
    --mirrors) mirrors="$(cd "${2:?--mirrors DIR}" && pwd)"; shift ;;
    --root) root="$(cd "${2:?--root DIR}" && pwd)"; shift ;;
    *) echo "usage: $0 [--online] [--mirrors DIR] [--root DIR]" >&2; exit 2 ;;
  esac
  shift
done
cd "$root"
list=scripts/action-pins.txt
[ -f "$list" ] || { echo "$list is missing" >&2; exit 1; }

failed=0
fail() { echo "FAIL $*" >&2; failed=1; }

# The pin list: `repo version commit`, comments and blank lines skipped.
declare -A pinned=() used=()
while read -r repo version commit extra; do
  case "$repo" in '' | '#'*) continue ;; esac
  if [ -n "$extra" ] || [[ ! "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] \
    || [[ ! "$commit" =~ ^[0-9a-f]{40}$ ]] || [ -z "$version" ]; then
    fail "$list: \`$repo $version $commit${extra:+ $extra}\` is not \`OWNER/REPO VERSION <40-hex commit>\`"
    continue
  fi
  if [ -n "${pinned[$repo $version]:-}" ] && [ "${pinned[$repo $version]}" != "$commit" ]; then
    fail "$list: $repo $version is listed twice with different commits"
  fi
  pinned["$repo $version"]="$commit"
done <"$list"

# Every `uses:` line: FILE:LINE, the reference, and the comment after `#` (may be empty).
files=()
for file in .github/workflows/*.yml .github/workflows/*.yaml examples/workflows/*.yml \
  examples/workflows/*.yaml action.yml action.yaml README.md; do
  [ -f "$file" ] && files+=("$file")
done
uses=$(awk '
  match($0, /^[[:space:]]*(-[[:space:]]+)?uses:[[:space:]]*/) {
    rest = substr($0, RLENGTH + 1)
    ref = rest; sub(/[[:space:]].*/, "", ref); gsub(/["\047]/, "", ref)
    comment = ""
    if (index(rest, "#") > 0) { comment = substr(rest, index(rest, "#") + 1); sub(/^[[:space:]]+/, "", comment) }
    print FILENAME ":" FNR "\t" ref "\t" comment
  }' "${files[@]}")

count=0
while IFS=$'\t' read -r where ref comment; do
  [ -n "$where" ] || continue
  count=$((count + 1))
  case "$ref" in
    ./* | .) continue ;;
    docker://*)
      [[ "$ref" =~ @sha256:[0-9a-f]{64}$ ]] || fail "$where: \`$ref\` is not pinned by digest"
      continue
      ;;
  esac
  action="${ref%@*}"
  at="${ref#*@}"
  repo=$(echo "$action" | cut -d/ -f1-2)
  if [ "$ref" = "$action" ] || [[ ! "$repo" == */* ]]; then
    fail "$where: \`$ref\` is not OWNER/REPO@REF"
    continue
  fi
  if [ "$repo" = "$self" ]; then
    case "$where" in
      examples/* | README.md:*)
        [[ "$at" =~ ^v[0-9]+$ ]] || fail "$where: \`$ref\`: the examples use this action as @vN (README says how to pin it)"
        ;;
      *) fail "$where: \`$ref\`: this repository's workflows run their own action as \`uses: ./\`" ;;
    esac
    continue
  fi
  version="${comment%%[[:space:]]*}"
  if [[ ! "$at" =~ ^[0-9a-f]{40}$ ]]; then
    fail "$where: \`$ref\` is not pinned by a full commit id"
  elif [ -z "$version" ]; then
    fail "$where: \`$ref\` has no version comment (\`@<commit> # vX.Y.Z\`)"
  elif [ -z "${pinned[$repo $version]:-}" ]; then
    fail "$where: $repo $version is not in $list (commit $at)"
  elif [ "${pinned[$repo $version]}" != "$at" ]; then
    fail "$where: $repo $version is ${pinned[$repo $version]} in $list, not $at"
    used["$repo $version"]=1
  else
    used["$repo $version"]=1
  fi
done <<<"$uses"
[ "$count" -gt 0 ] || fail "no \`uses:\` found in ${files[*]}"

for key in "${!pinned[@]}"; do
  [ -n "${used[$key]:-}" ] || fail "$list: $key is used nowhere; remove the line"
done
[ "$failed" = 0 ] && echo "ok pins: ${#used[@]} action version(s) in $count \`uses:\` line(s) match $list"

# The local copies, where there are any.
mirror_of() {
  local owner="${1%%/*}" name="${1#*/}" dir
  for dir in "$mirrors/$owner+$name/repo" "$mirrors/$owner+$name" "$mirrors/$owner/$name.git" \
    "$mirrors/$owner/$name"; do
    if git --git-dir="$dir" rev-parse --git-dir >/dev/null 2>&1; then
      echo "$dir"
      return
    fi
  done
}
if [ -n "$mirrors" ]; then
  for key in $(printf '%s\n' "${!pinned[@]}" | tr ' ' '@' | sort); do
    repo="${key%@*}" version="${key#*@}" commit="${pinned[${key/@/ }]}"
    dir=$(mirror_of "$repo")
    if [ -z "$dir" ]; then
      echo "skip $repo $version: no local copy under $mirrors"
      continue
    fi
    tagged=$(git --git-dir="$dir" rev-parse --verify --quiet "refs/tags/$version^{commit}" || true)
    if [ -z "$tagged" ]; then
      fail "$repo: the local copy has no tag $version"
    elif [ "$tagged" != "$commit" ]; then
      fail "$repo $version is $tagged in the local copy, not $commit"
    else
      echo "ok local copy: $repo $version = $commit"
    fi
  done
fi

# GitHub itself.
if $online; then
  for key in $(printf '%s\n' "${!pinned[@]}" | tr ' ' '@' | sort); do
    repo="${key%@*}" version="${key#*@}" commit="${pinned[${key/@/ }]}"
    if ! refs=$(git ls-remote "$remote$repo" "refs/tags/$version" "refs/tags/$version^{}"); then
      fail "$repo: git ls-remote $remote$repo failed"
      continue
    fi
    direct=$(awk -v r="refs/tags/$version" '$2 == r { print $1 }' <<<"$refs")
    peeled=$(awk -v r="refs/tags/$version^{}" '$2 == r { print $1 }' <<<"$refs")
    tagged="${peeled:-$direct}"
    if [ -z "$tagged" ]; then
      fail "$repo has no tag $version on $remote$repo"
    elif [ "$tagged" != "$commit" ]; then
      fail "$repo $version is $tagged on $remote$repo, not $commit"
    else
      echo "ok online: $repo $version = $commit"
    fi
  done
fi

exit "$failed"
