#!/usr/bin/env bash
# Lint: every stage of a Dockerfile that runs `cargo` copies what cargo needs from the build
# context, at the same relative path under its WORKDIR. A missing workspace member stops cargo
# before it compiles anything ("failed to load manifest for workspace member"), and a missing
# embedded file stops it later; neither shows in `scripts/dockerfile-steps.sh`, which runs the
# steps from the work tree where everything exists.
#
#   scripts/dockerfile-copies.sh [DOCKERFILE...]   # default: Dockerfile Dockerfile.cuda
#   scripts/dockerfile-copies.sh --self-test       # the lint fails on known-bad Dockerfiles
#   scripts/dockerfile-copies.sh --required        # what the build needs, one path per line
#
# What the build needs, read from the sources rather than listed here:
# - Cargo.toml and Cargo.lock;
# - every `[workspace] members` entry (globs expanded): the member folder, whole; for the root
#   package (`.`), its `src/`, `build.rs` (or the `build =` script) when there is one;
# - every file named by `include_str!`/`include_bytes!` in a member's non-test code (each `.rs`
#   file up to its first `#[cfg(test)]`, where this codebase keeps its unit tests).
# Each must be a file git tracks (a runner's checkout has nothing else), and so must each COPY
# source. Exit 1 naming every path missing from a cargo stage; 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

# Relative, normalised path (no `./`, no `..` left when it stays inside the repository).
norm() { realpath -m --relative-to=. "$1"; }

# `[workspace] members`, one per line, globs expanded.
members() {
  awk '
    /^\[/ { in_ws = ($0 == "[workspace]") }
    in_ws && /^members[[:space:]]*=/ { grab = 1 }
    grab { line = line $0; if ($0 ~ /\]/) grab = 0 }
    END {
      sub(/^[^[]*\[/, "", line); sub(/\].*$/, "", line)
      n = split(line, parts, ",")
      for (i = 1; i <= n; i++) { p = parts[i]; gsub(/[[:space:]"]/, "", p); if (p != "") print p }
    }' Cargo.toml | while read -r pattern; do
    # shellcheck disable=SC2086 # the member may be a glob
    for m in $pattern; do norm "$m"; done
  done
}

# Files a member's non-test code embeds with include_str!/include_bytes!.
includes() {
  local dir=$1 file
  while IFS= read -r -d '' file; do
    awk '/^[[:space:]]*#\[cfg\(test\)\]/ { exit } { print }' "$file" \
      | { grep -oE 'include_(str|bytes)!\(\s*"[^"]+"' || true; } | sed -E 's/.*"([^"]+)"$/\1/' \
      | while read -r rel; do norm "$(dirname "$file")/$rel"; done
  done < <(find "$dir" -name '*.rs' -not -path '*/target/*' -print0)
}

required() {
  echo Cargo.toml
  echo Cargo.lock
  local m build
  while read -r m; do
    if [ "$m" = . ]; then
      echo src
      build=$(sed -n 's/^build[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
      if [ -n "$build" ]; then norm "$build"; elif [ -f build.rs ]; then echo build.rs; fi
      includes src
    else
      echo "$m"
      includes "$m"
    fi
  done < <(members)
}

# `stage-index<TAB>source<TAB>target` for each context COPY/ADD of the stages that run cargo,
# targets relative to the stage's WORKDIR (`.` = the folder cargo runs in).
copies() {
  awk '
    function rel(p) { sub(/^\.\//, "", p); if (p == "" || p == ".") return "."; sub(/\/$/, "", p); return p }
    /^FROM[[:space:]]/ { stage++; workdir = "/"; next }
    /^WORKDIR[[:space:]]/ { workdir = $2; next }
    /^RUN[[:space:]].*cargo[[:space:]]/ { cargo[stage] = 1; next }
    /^(COPY|ADD)[[:space:]]/ {
      if ($0 ~ /--from=/) next
      n = 0
      for (i = 2; i <= NF; i++) if ($i !~ /^--/) args[++n] = $i
      dest = args[n]
      if (dest ~ /^\//) {
        w = workdir; sub(/\/$/, "", w)
        if (dest == w || dest == w "/") dest = "."
        else if (index(dest, w "/") == 1) dest = substr(dest, length(w) + 2)
        else dest = "/outside" dest
      }
      dir = (dest ~ /\/$/ || dest == "." || n > 2)
      for (i = 1; i < n; i++) {
        src = rel(args[i])
        if (!dir) target = rel(dest)
        else {
          # A folder source puts its contents into dest; a file keeps its name.
          base = src; sub(/.*\//, "", base)
          target = (ENVIRON["DIRS"] ~ ("(^|:)" src "(:|$)")) ? rel(dest) : (rel(dest) == "." ? base : rel(dest) "/" base)
        }
        line[++lines] = stage "\t" src "\t" target
      }
    }
    END { for (i = 1; i <= lines; i++) { split(line[i], f, "\t"); if (cargo[f[1]]) print line[i] } }
  ' "$1"
}

lint() {
  local dockerfile=$1 status=0 need src target covered stages
  [ -f "$dockerfile" ] || { echo "dockerfile-copies: no \`$dockerfile\`" >&2; return 2; }
  # Folders among the sources, so that `COPY dir ./` is read as copying the folder's contents.
  DIRS=$(find . -mindepth 1 -type d -not -path './.git*' -not -path './target*' -printf '%P:')
  export DIRS
  local table
  table=$(copies "$dockerfile")
  stages=$(cut -f1 <<< "$table" | sort -u)
  if [ -z "$table" ]; then
    echo "$dockerfile: no stage runs cargo with files copied from the context" >&2
    return 1
  fi
  for stage in $stages; do
    while IFS=$'\t' read -r _ src target; do
      if [ -z "$(git ls-files -- "$src" | head -n 1)" ]; then
        echo "$dockerfile: \`COPY $src\` names nothing git tracks: a runner's checkout lacks it" >&2
        status=1
      fi
    done < <(awk -F'\t' -v s="$stage" '$1 == s' <<< "$table")
    while read -r need; do
      covered=0
      while IFS=$'\t' read -r _ src target; do
        # Covered: the path itself, or a folder above it, copied to the same relative place.
        if [ "$src" = "$target" ] && { [ "$src" = . ] || [ "$need" = "$src" ] || [[ $need == "$src"/* ]]; }; then
          covered=1
          break
        fi
      done < <(awk -F'\t' -v s="$stage" '$1 == s' <<< "$table")
      if [ "$covered" = 0 ]; then
        echo "$dockerfile: the cargo stage (FROM #$stage) does not copy \`$need\` to \`./$need\`" >&2
        status=1
      fi
      if [ -z "$(git ls-files -- "$need" | head -n 1)" ]; then
        echo "$dockerfile: the build needs \`$need\`, which git does not track" >&2
        status=1
      fi
    done < <(required | sort -u)
  done
  return "$status"
}

# shellcheck disable=SC2016 # the backticks are the text the lint prints
self_test() {
  local tmp status=0
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  lint Dockerfile 2> "$tmp/out" || { cat "$tmp/out" >&2; echo "self-test: Dockerfile should pass" >&2; status=1; }
  # The regression of issue 19 (no `COPY emulators`), a missing embedded template, a member
  # copied into the wrong place, and a copy of an untracked folder.
  check_fails() {
    local name=$1 expect=$2
    mkdir -p "$tmp/$name"
    cp "$tmp/Dockerfile.$name" "$tmp/$name/Dockerfile"
    if lint "$tmp/$name/Dockerfile" 2> "$tmp/out"; then
      echo "self-test: \`$name\` passed the lint" >&2; status=1
    elif ! grep -qF "$expect" "$tmp/out"; then
      echo "self-test: \`$name\` failed without naming \`$expect\`:" >&2; cat "$tmp/out" >&2; status=1
    fi
  }
  grep -v '^COPY emulators' Dockerfile > "$tmp/Dockerfile.no-emulators"
  check_fails no-emulators '`emulators`'
  grep -v '^COPY templates' Dockerfile > "$tmp/Dockerfile.no-templates"
  check_fails no-templates '`templates/model_card.md.j2`'
  sed 's|^COPY emulators ./emulators|COPY emulators ./|' Dockerfile > "$tmp/Dockerfile.flattened"
  check_fails flattened '`emulators`'
  sed 's|^COPY src ./src|COPY src ./src\nCOPY target ./target|' Dockerfile > "$tmp/Dockerfile.untracked"
  check_fails untracked '`COPY target`'
  [ "$status" = 0 ] && echo "dockerfile-copies self-test: ok"
  return "$status"
}

case "${1:-}" in
  --self-test) self_test; exit ;;
  --required) required | sort -u; exit ;;
esac
[ $# -gt 0 ] || set -- Dockerfile Dockerfile.cuda
status=0
for dockerfile in "$@"; do
  lint "$dockerfile" || status=$?
done
[ "$status" = 0 ] && echo "dockerfile-copies: $* copy every file the cargo build needs"
exit "$status"
