#!/usr/bin/env bash
# The action's real image, built and run here as a GitHub runner runs a container action.
#
#   scripts/image-test.sh                  # build the image, then run every scenario
#   scripts/image-test.sh build            # only build the image
#   scripts/image-test.sh run [NAME...]    # only run scenarios (pr-check tag-publish rerun-after-fault
#                                          # dirty-tree) against the image built last
#
# Build: the whole `Dockerfile`, every stage, from a copy in which only the `FROM` lines differ:
# each pinned base image is replaced by its local stand-in (`scripts/image-bases.sh`, built when
# missing), and a diff asserts that every other line is byte-identical. The build context is what
# a runner's checkout holds: the files git tracks plus untracked files git does not ignore (never
# `target/` or `.venv/`).
#
# Run: `docker run --rm` with the options the runner's ContainerActionHandler passes: the image's
# entrypoint, `--workdir /github/workspace`, the workspace (a committed git repository made from
# `tests/fixtures/tinydit`, owned by uid 1001 while the container runs as root, as on hosted
# runners), `/github/file_commands`, `/github/workflow/event.json`, `/github/home`,
# `/github/runner_temp`, the `GITHUB_*`/`RUNNER_*` variables with the container's paths, and one
# `INPUT_*` variable per input of `action.yml` (its default, or the step's `with:` value). Two
# differences from a runner: the network is the host's (`--network host`, where the runner uses
# the job's network), since the Hub and GitHub emulators bind 127.0.0.1; and the Docker socket
# is not mounted (the tool never uses it). The Hub emulator's data folder is mounted at its own
# path, since the tool and the emulator share the Xet store `local://<data>/cas`.
#
# Scenarios (one `ok`/`FAIL` line each; the exit status is 1 when any fails):
#   pr-check           pull_request `check`, no tokens: exit 0, outputs and a step summary
#   tag-publish        tag push `publish` against the emulators: exit 0, Hub tag and GitHub release
#   rerun-after-fault  GitHub answers 503 to the release's publish PATCH: exit 2; fault cleared, a
#                      plain re-run (not --bundle) exits 0 and the Hub has one release commit
#   dirty-tree         a modified tracked release.toml: `publish` exits 2 naming uncommitted changes,
#                      and nothing is published; the command line's `publish --allow-dirty` exits 0
#
# Needs root (debootstrap, chown), a running Docker engine, debootstrap, git, curl and python3.
#
# Environment: DOCKER (default docker), IMAGE_TAG (default tinydit-release:image-test),
# EMULATOR_BIN_DIR (folder with hub-emulator and github-emulator; default: built with
# `cargo build -p emulators` into target/), KEEP=1 keeps the scenario folders.
#
# Speed: Docker's layer cache skips every stage whose inputs did not change (a re-run without
# changes to the Rust sources takes seconds). After a change to them the builder stage compiles
# everything again (about 10 minutes on 2 cores). IMAGE_TEST_WARM=1 (opt-in, for iterating)
# instead starts the builder stage from a "warm" stand-in: the Rust stand-in plus the previous
# build's `/src/target` and cargo registry, every other file of `/src` removed, so only what
# changed is compiled while every COPY line must still bring the sources in. Without the warm
# stand-in, or with IMAGE_TEST_WARM unset, the builder starts from the plain Rust stand-in.
# Each build after a change leaves the previous stages' images untagged (about 1.4 GB for the
# builder's): `docker image prune` reclaims them, and drops the builder stage's layer cache too
# (its last image is never tagged), so the next build compiles everything again.
set -euo pipefail
cd "$(dirname "$0")/.."
docker="${DOCKER:-docker}"
image="${IMAGE_TAG:-tinydit-release:image-test}"

log() { echo "image-test: $*" >&2; }
die() { echo "image-test: $*" >&2; exit 2; }

# --- build -------------------------------------------------------------------------------------

build() {
  local started=$SECONDS out=target/image-test
  scripts/image-bases.sh
  log "stand-ins ready in $((SECONDS - started)) s"
  started=$SECONDS
  rm -rf "$out"
  mkdir -p "$out"

  # Each pinned base image -> its stand-in, on `FROM` lines only.
  declare -A standin
  while read -r role tag; do standin[$role]=$tag; done < <(scripts/image-bases.sh --print)
  local line base rest copy="$out/image-test.Dockerfile"
  : > "$copy"
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ ^FROM[[:space:]]+([^[:space:]]+)(.*)$ ]]; then
      base=${BASH_REMATCH[1]} rest=${BASH_REMATCH[2]}
      case "$base" in
        rust:*)
          base=${standin[rust]}
          if [ "${IMAGE_TEST_WARM:-0}" = 1 ] && [ "$(warm_base "$base-warm")" = "$(image_id "$base")" ]; then
            base=$base-warm
          fi
          ;;
        python:*) base=${standin[python]} ;;
        debian:*) base=${standin[debian]} ;;
        *) die "no stand-in for the base image \`$base\`: extend scripts/image-bases.sh" ;;
      esac
      printf 'FROM %s%s\n' "$base" "$rest" >> "$copy"
    else
      printf '%s\n' "$line" >> "$copy"
    fi
  done < Dockerfile
  cmp -s <(grep -v '^FROM' Dockerfile) <(grep -v '^FROM' "$copy") \
    || { diff <(grep -v '^FROM' Dockerfile) <(grep -v '^FROM' "$copy") >&2; die "the copy differs beyond FROM lines"; }
  [ "$(grep -c '^FROM' Dockerfile)" = "$(grep -c '^FROM' "$copy")" ] || die "FROM lines lost"
  ! grep -q '^FROM .*@sha256:' "$copy" || die "a FROM line kept its registry image"
  log "Dockerfile with stand-ins (every other line identical):"
  diff Dockerfile "$copy" | sed -n 's/^> /  /p' >&2 || true

  # The context a checkout holds, plus the copy (under a name the repository does not use).
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf "$out/context.tar"
  sha256sum < "$out/context.tar" | cut -d' ' -f1 > "$out/sources.sha256"
  tar -rf "$out/context.tar" -C "$out" image-test.Dockerfile
  log "docker build ($(du -h "$out/context.tar" | cut -f1) context) -> $image, log in $out/build.log"
  # The build's own processes belong to the daemon: run dockerd itself under `nice` to lower them.
  nice -n 10 "$docker" build --force-rm -f image-test.Dockerfile -t "$image" - < "$out/context.tar" \
    > "$out/build.log" 2>&1 \
    || { tail -n 40 "$out/build.log" >&2; die "docker build failed (log above)"; }
  log "built $image in $((SECONDS - started)) s"
  if [ "${IMAGE_TEST_WARM:-0}" = 1 ]; then warm_builder "$out" "${standin[rust]}"; fi
  rm -f "$out/context.tar"
}

image_id() { "$docker" image inspect --format '{{.Id}}' "$1" 2> /dev/null || true; }
# The Rust stand-in a warm stand-in was made from (it is used only while that is current).
warm_base() {
  "$docker" image inspect --format '{{index .Config.Labels "tinydit.warm.base"}}' "$1" 2> /dev/null || true
}

# warm_builder OUT RUST-STANDIN: the builder stage just built (all cached), its /src emptied
# except `target/`, flattened into one layer (so warm images do not stack) with the stand-in's
# ENV, tagged RUST-STANDIN-warm. Skipped when neither the checkout's files nor the Rust stand-in
# changed since the last one (a build from the warm stand-in makes a new builder image even then).
warm_builder() {
  local out=$1 rust=$2 tag=$2-warm started=$SECONDS container=tinydit-image-test-warm-$$ changes=()
  local stamp="${IMAGE_CACHE:-target/image-cache}/warm-builder.stamp" inputs builder
  inputs="$(cat "$out/sources.sha256") $(image_id "$rust")"
  if [ "$(warm_base "$tag")" = "$(image_id "$rust")" ] && [ "$(cat "$stamp" 2> /dev/null)" = "$inputs" ]; then
    return
  fi
  # By id, untagged: removing a tag would remove the image, and with it the layer cache.
  builder=$("$docker" build -q -f image-test.Dockerfile --target builder - < "$out/context.tar" 2> "$out/warm.log") \
    || { cat "$out/warm.log" >&2; die "the builder stage did not build again"; }
  containers+=("$container")
  "$docker" run --name "$container" "$builder" \
    find /src -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
  while IFS= read -r env; do
    [ -n "$env" ] && changes+=(--change "ENV ${env%%=*}=${env#*=}")
  done < <("$docker" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$builder")
  "$docker" export "$container" | "$docker" import "${changes[@]}" --change 'CMD ["bash"]' \
    --change "LABEL tinydit.warm.base=$(image_id "$rust")" - "$tag" > /dev/null
  "$docker" rm "$container" > /dev/null
  mkdir -p "$(dirname "$stamp")"
  printf '%s\n' "$inputs" > "$stamp"
  log "warm builder stand-in $tag in $((SECONDS - started)) s"
}

# --- the world a scenario runs in --------------------------------------------------------------

hf_token=hf_image_test_write_token
gh_token=ghp_image_test_write_token
hub_repo=alice/tinydit
gh_repo=alice/tinydit-src
uid=1001 # the runner user's uid on GitHub's hosted runners; the container runs as root

emulator_dir="${EMULATOR_BIN_DIR:-}"
emulators() {
  if [ -z "$emulator_dir" ]; then
    log "building the emulators (cargo build -p emulators)"
    cargo build --quiet --locked -p emulators
    emulator_dir="$(cargo metadata --format-version 1 --no-deps \
      | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug"
  fi
  [ -x "$emulator_dir/hub-emulator" ] && [ -x "$emulator_dir/github-emulator" ] \
    || die "no hub-emulator/github-emulator in \`$emulator_dir\`"
}

pids=()
containers=()
work=
# Set by start_emulator (also hub_second, hub_pid, github_pid).
hub_url='' github_url='' github_second=''
cleanup() {
  local pid name
  for name in "${containers[@]}"; do "$docker" rm -f "$name" > /dev/null 2>&1 || true; done
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  if [ "${KEEP:-0}" != 1 ] && [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# start_emulator NAME DATA SEED: starts it; sets NAME_url, NAME_second and NAME_pid.
start_emulator() {
  local name=$1 data=$2 seed=$3 out="$2.out"
  mkdir -p "$data"
  printf '%s' "$seed" > "$data.seed.json"
  # Created before the emulator starts: the wait below must not read a file not yet opened.
  : > "$out"
  "$emulator_dir/$name-emulator" --data "$data" --port 0 --seed "$data.seed.json" \
    > "$out" 2> "$data.err" &
  pids+=("$!")
  printf -v "${name}_pid" '%s' "$!"
  for _ in $(seq 100); do
    [ "$(wc -l < "$out")" -ge 2 ] && break
    sleep 0.1
  done
  [ "$(wc -l < "$out")" -ge 2 ] || die "$name-emulator printed nothing: $(cat "$data.err")"
  printf -v "${name}_url" '%s' "$(sed -n '1s/^listening on //p' "$out")"
  printf -v "${name}_second" '%s' "$(sed -n '2s/^[a-z]* on //p' "$out")"
}

stop_emulator() {
  local pid_var="${1}_pid"
  kill "${!pid_var}" 2> /dev/null || true
  wait "${!pid_var}" 2> /dev/null || true
}

# make_repo DIR: a committed repository made from tests/fixtures/tinydit, with a release.toml
# that names the repositories the emulators hold.
make_repo() {
  local repo=$1
  [ -n "$repo" ] && [ ! -e "$repo" ] || die "make_repo: \`$repo\` is empty or exists"
  mkdir -p "$repo"
  cp -a tests/fixtures/tinydit/. "$repo/"
  sed -e "s|@HUB_REPO@|$hub_repo|" -e "s|@GITHUB_REPO@|$gh_repo|" \
    tests/image/release.toml.in > "$repo/release.toml"
  printf 'dist/\n' > "$repo/.gitignore"
  git -C "$repo" init --quiet --initial-branch main
  git -C "$repo" add -A
  git -C "$repo" -c user.name=alice -c user.email=alice@example.com commit --quiet -m "TinyDiT release"
}

# new_world NAME: a scenario's folder, its repository and both emulators. The GitHub emulator's
# `main` is the repository's commit, so `GITHUB_SHA` names a commit both sides know.
new_world() {
  scenario_started=$SECONDS
  world="$work/$1"
  mkdir -p "$world"
  make_repo "$world/repo"
  release_sha=$(git -C "$world/repo" rev-parse HEAD)
  start_emulator hub "$world/hub-data" "{\"tokens\": [
    {\"token\": \"$hf_token\", \"user\": \"alice\", \"scopes\": [\"read\", \"write\"]}]}"
  start_emulator github "$world/gh-data" "{\"tokens\": [
    {\"token\": \"$gh_token\", \"user\": \"alice\", \"scopes\": [\"contents:read\", \"contents:write\"]}],
    \"repos\": [{\"owner\": \"alice\", \"name\": \"tinydit-src\", \"commits\": [\"initial commit\"]}]}"
  # The emulator names its commits itself: add the repository's commit to its state, restart.
  stop_emulator github
  python3 - "$world/gh-data/state.json" "$gh_repo" "$release_sha" <<'PY'
import json, sys
path, repo, sha = sys.argv[1:]
state = json.load(open(path))
r = state["repos"][repo]
parent = r["refs"]["refs/heads/main"]["sha"]
r["commits"][sha] = {"sha": sha, "message": "TinyDiT release", "parents": [parent],
                     "date": r["commits"][parent]["date"] + 1}
r["refs"]["refs/heads/main"] = {"sha": sha, "kind": "commit"}
json.dump(state, open(path, "w"))
PY
  start_emulator github "$world/gh-data" '{}'
}

# fresh_workspace: a new job's checkout of the repository (a re-run gets a new one too), owned
# by the runner's user.
fresh_workspace() {
  rm -rf "$world/workspace"
  cp -a "$world/repo" "$world/workspace"
  chown -R "$uid:$uid" "$world/workspace"
}

# The `INPUT_*` variables the runner sets: one per input of action.yml, its default unless the
# step's `with` (an associative array) gives it; `${{ github.token }}` is `$github_token`.
# NUL-separated `-e` arguments for docker run.
input_envs() {
  local name default value
  while IFS=$'\t' read -r name default; do
    value=$default
    # shellcheck disable=SC2016 # the expression as action.yml spells it
    [ "$value" = '${{ github.token }}' ] && value=$github_token
    if [ -n "${with[$name]+set}" ]; then value=${with[$name]}; fi
    printf -- '-e\0INPUT_%s=%s\0' "${name^^}" "$value"
  done < <(awk '
    /^inputs:/ { on = 1; next }
    /^[^ #]/ { on = 0 }
    on && /^  [a-z_]+:[[:space:]]*$/ { if (name != "") print name "\t" def; name = $1; sub(/:$/, "", name); def = "" }
    on && /^    default:/ { def = $0; sub(/^    default:[[:space:]]*/, "", def); gsub(/^"|"$/, "", def) }
    END { if (name != "") print name "\t" def }' action.yml)
}

# runner_run LABEL EVENT REF SHA [DOCKER-ARG...] IMAGE [ARG...]: the container as the runner
# starts it, with `with` (the step's inputs), `github_token` (the job token; empty: none) and
# `event_json`. Sets `status`; the log is $world/LABEL.log, the runner files $world/LABEL/.
runner_run() {
  local label=$1 event=$2 ref=$3 sha=$4 dir
  shift 4
  dir="$world/$label"
  mkdir -p "$dir/file_commands" "$dir/workflow" "$dir/home" "$dir/runner_temp"
  local f
  for f in set_output step_summary set_env add_path save_state; do : > "$dir/file_commands/${f}_1"; done
  printf '%s\n' "$event_json" > "$dir/workflow/event.json"
  chown -R "$uid:$uid" "$dir"
  local ref_type=branch ref_name=${ref#refs/*/}
  [[ $ref == refs/tags/* ]] && ref_type=tag
  local name="tinydit-image-test-$label-$$"
  containers+=("$name")
  local inputs=()
  mapfile -d '' inputs < <(input_envs)
  set +e
  timeout --foreground 900 "$docker" run --name "$name" --label tinydit-image-test --rm \
    --workdir /github/workspace --network host \
    -e HOME=/github/home -e CI=true -e GITHUB_ACTIONS=true \
    -e GITHUB_EVENT_NAME="$event" -e GITHUB_EVENT_PATH=/github/workflow/event.json \
    -e GITHUB_REF="$ref" -e GITHUB_REF_NAME="$ref_name" -e GITHUB_REF_TYPE="$ref_type" \
    -e GITHUB_SHA="$sha" -e GITHUB_REPOSITORY="$gh_repo" -e GITHUB_REPOSITORY_OWNER=alice \
    -e GITHUB_ACTOR=alice -e GITHUB_TRIGGERING_ACTOR=alice -e GITHUB_WORKFLOW=release \
    -e GITHUB_JOB=release -e GITHUB_RUN_ID=4242 -e GITHUB_RUN_NUMBER=7 -e GITHUB_RUN_ATTEMPT=1 \
    -e GITHUB_ACTION=release -e GITHUB_ACTION_REPOSITORY= -e GITHUB_ACTION_REF= \
    -e GITHUB_SERVER_URL=https://github.com -e GITHUB_API_URL="$github_url" \
    -e GITHUB_GRAPHQL_URL="$github_url/graphql" -e GITHUB_RETENTION_DAYS=90 \
    -e GITHUB_WORKSPACE=/github/workspace \
    -e GITHUB_OUTPUT=/github/file_commands/set_output_1 \
    -e GITHUB_STEP_SUMMARY=/github/file_commands/step_summary_1 \
    -e GITHUB_ENV=/github/file_commands/set_env_1 -e GITHUB_PATH=/github/file_commands/add_path_1 \
    -e GITHUB_STATE=/github/file_commands/save_state_1 \
    -e RUNNER_OS=Linux -e RUNNER_ARCH=X64 -e RUNNER_NAME=image-test -e RUNNER_ENVIRONMENT=github-hosted \
    -e RUNNER_TEMP=/github/runner_temp -e RUNNER_TOOL_CACHE=/opt/hostedtoolcache \
    -e RUNNER_WORKSPACE=/home/runner/work/tinydit-src \
    -e HF_ENDPOINT="$hub_url" -e TINYDIT_RELEASE_GITHUB_UPLOAD_URL="$github_second" \
    -e HF_HUB_DISABLE_TELEMETRY=1 \
    "${inputs[@]}" \
    -v "$world/workspace:/github/workspace" \
    -v "$dir/file_commands:/github/file_commands" \
    -v "$dir/workflow:/github/workflow" \
    -v "$dir/home:/github/home" \
    -v "$dir/runner_temp:/github/runner_temp" \
    -v "$world/hub-data:$world/hub-data" \
    "$@" > "$world/$label.log" 2>&1
  status=$?
  set -e
}

# Emulator reads (admin routes take no token).
hub_get() { curl -fsS "$hub_url$1"; }
gh_get() { curl -fsS -H "Authorization: Bearer $gh_token" "$github_url$1"; }
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# Release commits on the Hub's main (the emulator's `initial commit` left out), Hub tags, and
# GitHub's release of v0.1.0.
hub_commits() {
  hub_get "/api/models/$hub_repo/commits/main" 2> /dev/null \
    | json "len([c for c in d if c['title'] != 'initial commit'])" 2> /dev/null || echo 0
}
hub_tags() {
  hub_get "/api/models/$hub_repo/refs" 2> /dev/null \
    | json "' '.join(t['name'] for t in d.get('tags', []))" 2> /dev/null || true
}
gh_release() {
  gh_get "/repos/$gh_repo/releases/tags/v0.1.0" 2> /dev/null \
    | json "'published, %d assets' % len(d['assets']) if d.get('draft') is False else 'none'" 2> /dev/null \
    || echo none
}

# --- scenarios ---------------------------------------------------------------------------------

failures=0
scenario_started=$SECONDS
# result ok|FAIL NAME MESSAGE [LOG]: one line, the scenario's time, the log's tail on failure.
result() {
  local took="($((SECONDS - scenario_started)) s)"
  if [ "$1" = ok ]; then
    printf 'ok   %-18s %s %s\n' "$2" "$3" "$took"
  else
    printf 'FAIL %-18s %s %s\n' "$2" "$3" "$took"
    failures=$((failures + 1))
    if [ -n "${4:-}" ] && [ -f "$4" ]; then tail -n 25 "$4" | sed 's/^/     | /'; fi
  fi
}

outputs() { cat "$world/$1/file_commands/set_output_1"; }
summary() { cat "$world/$1/file_commands/step_summary_1"; }

# (a) A pull request's `check`: no tokens, exit 0, outputs and a step summary.
scenario_pr_check() {
  new_world pr-check
  fresh_workspace
  local head=$release_sha merge out sum
  # actions/checkout checks out the merge commit GitHub made (`GITHUB_SHA`); the event names the
  # pull request's head, which the provenance must name.
  git -C "$world/workspace" -c safe.directory='*' -c user.name=GitHub -c user.email=noreply@github.com \
    commit --quiet --allow-empty -m "Merge $head into main"
  merge=$(git -C "$world/workspace" -c safe.directory='*' rev-parse HEAD)
  chown -R "$uid:$uid" "$world/workspace"
  event_json="{\"action\": \"synchronize\", \"number\": 7, \"pull_request\": {\"number\": 7,
    \"head\": {\"sha\": \"$head\", \"ref\": \"feature\", \"repo\": {\"full_name\": \"$gh_repo\", \"fork\": false}},
    \"base\": {\"sha\": \"$head\", \"ref\": \"main\", \"repo\": {\"full_name\": \"$gh_repo\"}}},
    \"repository\": {\"full_name\": \"$gh_repo\"}}"
  declare -A with=([command]=check)
  github_token=
  runner_run check pull_request refs/pull/7/merge "$merge" "$image"
  out=$(outputs check) sum=$(summary check)
  if [ "$status" != 0 ]; then
    result FAIL pr-check "exit $status, expected 0" "$world/check.log"
  elif ! grep -q '^gates_passed=true$' <<< "$out"; then
    result FAIL pr-check "no \`gates_passed=true\` output: $(head -c 300 <<< "$out")" "$world/check.log"
  elif ! grep -q '^version=$' <<< "$out"; then
    result FAIL pr-check "no empty \`version\` output (a pull request has no tag)" "$world/check.log"
  elif ! grep -q 'tinydit.safetensors' <<< "$sum"; then
    result FAIL pr-check "the step summary does not list the bundle ($(wc -c <<< "$sum") bytes)" "$world/check.log"
  elif ! grep -q "pull request head \`$head\`" <<< "$sum"; then
    result FAIL pr-check "the summary does not name the pull request's head \`$head\`" "$world/check.log"
  else
    result ok pr-check "exit 0; outputs $(grep -oE '^[a-z_]+(=|<<)' <<< "$out" | tr -d '=<' | paste -sd ' '); summary $(wc -c <<< "$sum") bytes"
  fi
  stop_emulator hub
  stop_emulator github
}

# The tag push's `command: publish` step: publish_step LABEL.
publish_step() {
  event_json="{\"ref\": \"refs/tags/v0.1.0\", \"before\": \"0000000000000000000000000000000000000000\",
    \"after\": \"$release_sha\", \"created\": true, \"deleted\": false, \"forced\": false, \"base_ref\": null,
    \"head_commit\": {\"id\": \"$release_sha\", \"message\": \"TinyDiT release\"},
    \"repository\": {\"full_name\": \"$gh_repo\"}, \"pusher\": {\"name\": \"alice\"}, \"sender\": {\"login\": \"alice\"}}"
  declare -A with=([command]=publish [hf_token]="$hf_token")
  github_token=$gh_token
  runner_run "$1" push refs/tags/v0.1.0 "$release_sha" "$image"
}

# (b) A tag push's `publish` against the emulators.
scenario_tag_publish() {
  new_world tag-publish
  fresh_workspace
  publish_step publish
  local out tags release
  out=$(outputs publish) tags=$(hub_tags) release=$(gh_release)
  if [ "$status" != 0 ]; then
    result FAIL tag-publish "exit $status, expected 0" "$world/publish.log"
  elif ! grep -q '^hf_commit=' <<< "$out" || ! grep -q '^release_url=' <<< "$out"; then
    result FAIL tag-publish "no hf_commit/release_url outputs: $(head -c 300 <<< "$out")" "$world/publish.log"
  elif [[ " $tags " != *" v0.1.0 "* ]]; then
    result FAIL tag-publish "the Hub has no tag v0.1.0 (tags: ${tags:-none})" "$world/publish.log"
  elif [[ $release != published* ]]; then
    result FAIL tag-publish "GitHub has no published release v0.1.0" "$world/publish.log"
  else
    result ok tag-publish "exit 0; Hub tag v0.1.0, $(hub_commits) release commit; GitHub release $release"
  fi
  stop_emulator hub
  stop_emulator github
}

# (c) GitHub answers 503 to the last write (publishing the draft release); once it is healthy,
# "Re-run failed jobs" (a new job: a new checkout, `publish` from scratch) finishes the release.
scenario_rerun_after_fault() {
  new_world rerun-after-fault
  curl -fsS -X POST "$github_url/_emulator/faults" -H 'Content-Type: application/json' \
    -d '{"faults": [{"method": "PATCH", "path": "/repos/*/*/releases/*", "action": "status", "status": 503, "message": "Service Unavailable"}]}' > /dev/null
  fresh_workspace
  publish_step attempt-1
  local first=$status commits release
  curl -fsS -X DELETE "$github_url/_emulator/faults" > /dev/null
  fresh_workspace
  publish_step attempt-2
  commits=$(hub_commits) release=$(gh_release)
  if [ "$first" != 2 ]; then
    result FAIL rerun-after-fault "the faulted run exited $first, expected 2" "$world/attempt-1.log"
  elif [ "$status" != 0 ]; then
    result FAIL rerun-after-fault "the re-run exited $status, expected 0" "$world/attempt-2.log"
  elif [ "$commits" != 1 ]; then
    result FAIL rerun-after-fault "the Hub has $commits release commits, expected 1" "$world/attempt-2.log"
  elif [[ $release != published* ]]; then
    result FAIL rerun-after-fault "GitHub has no published release v0.1.0" "$world/attempt-2.log"
  else
    result ok rerun-after-fault "503 on the release PATCH: exit 2; re-run: exit 0, 1 Hub release commit, GitHub release $release"
  fi
  stop_emulator hub
  stop_emulator github
}

# (d) A tracked file modified in the job: `publish` refuses; the command line's `--allow-dirty`
# (no action input) publishes anyway.
scenario_dirty_tree() {
  new_world dirty-tree
  fresh_workspace
  printf '# edited in the job, not committed\n' >> "$world/workspace/release.toml"
  publish_step dirty
  local tags
  tags=$(hub_tags)
  if [ "$status" != 2 ]; then
    result FAIL dirty-tree "publish with a modified tracked release.toml exited $status, expected 2 (Hub tags: ${tags:-none})" "$world/dirty.log"
  elif ! grep -qi 'uncommitted changes' "$world/dirty.log"; then
    result FAIL dirty-tree "exit 2 without naming uncommitted changes" "$world/dirty.log"
  elif [ -n "$tags" ]; then
    result FAIL dirty-tree "refused, but the Hub has tags: $tags" "$world/dirty.log"
  else
    # The command line, not the action: no step inputs.
    declare -A with=()
    runner_run allow-dirty push refs/tags/v0.1.0 "$release_sha" \
      -e HF_TOKEN="$hf_token" -e GITHUB_TOKEN="$gh_token" \
      --entrypoint /usr/local/bin/tinydit-release "$image" publish --allow-dirty
    if [ "$status" != 0 ]; then
      result FAIL dirty-tree "refused as it should, but \`publish --allow-dirty\` exited $status" "$world/allow-dirty.log"
    else
      result ok dirty-tree "refused (exit 2, uncommitted changes); \`publish --allow-dirty\`: exit 0"
    fi
  fi
  stop_emulator hub
  stop_emulator github
}

run_scenarios() {
  local name started=$SECONDS
  "$docker" image inspect "$image" > /dev/null 2>&1 || die "no image \`$image\`: run \`$0 build\` first"
  emulators
  work=$(mktemp -d "${TMPDIR:-/tmp}/tinydit-image-test.XXXXXX")
  chmod 755 "$work"
  if [ "${KEEP:-0}" = 1 ]; then log "scenario folders in $work"; fi
  [ $# -gt 0 ] || set -- pr-check tag-publish rerun-after-fault dirty-tree
  for name in "$@"; do
    case "$name" in
      pr-check) scenario_pr_check ;;
      tag-publish) scenario_tag_publish ;;
      rerun-after-fault) scenario_rerun_after_fault ;;
      dirty-tree) scenario_dirty_tree ;;
      *) die "unknown scenario \`$name\`" ;;
    esac
  done
  log "$# scenarios in $((SECONDS - started)) s"
  [ "$failures" = 0 ] || { log "$failures of $# scenarios failed"; return 1; }
}

case "${1:-all}" in
  build) build ;;
  run) shift; run_scenarios "$@" ;;
  all) build; run_scenarios ;;
  *) echo "usage: $0 [build | run [SCENARIO...]]" >&2; exit 2 ;;
esac
