//! `publish` against emulators as strict as the services (issue 13, item 5): Xet objects that
//! belong to one Hub repo and propagate, the Hub's and GitHub's rate limits, installation
//! tokens, GitHub's renaming and paging of assets, a source commit GitHub does not have, and
//! the Hub's passing 409 on a repo create.

use std::process::Command;

use serde_json::{Value, json};

use super::{HF_TOKEN, Outcome, REPO, World};

/// Runs `command` and checks that no secret (anything holding `s3cr3t`) leaked.
fn outcome(mut command: Command) -> Outcome {
    let output = command.output().expect("run");
    let outcome = Outcome {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    outcome.assert_no_secrets();
    outcome
}

fn post(url: &str, token: Option<&str>, body: &Value) -> Value {
    let mut request = ureq::post(url)
        .config()
        .http_status_as_error(false)
        .build()
        .header("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.send(body.to_string()).expect("POST");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    assert!(status < 300, "POST {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// `(ts_ms, status)` of the logged requests that match.
fn answers(log: &[Value], matches: impl Fn(&Value) -> bool) -> Vec<(u64, Option<u64>)> {
    log.iter()
        .filter(|r| matches(r))
        .map(|r| (r["ts_ms"].as_u64().expect("ts"), r["status"].as_u64()))
        .collect()
}

fn path_of(r: &Value) -> &str {
    r["path"].as_str().unwrap_or_default()
}

/// Writes `dist/` for `version` with these files (and a `metrics.json`), as `check` would.
fn bundle_files(world: &World, version: &str, files: &[(&str, Vec<u8>)]) {
    world.bundle(version, b"weights");
    let dist = world.ctx.path().join("dist");
    let bundle = dist.join("bundle");
    let manifest_path = dist.join("manifest.json");
    let mut manifest: tinydit_release::manifest::ReleaseManifest =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest"))
            .expect("manifest JSON");
    for (path, bytes) in files {
        let full = bundle.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(&full, bytes).expect("write");
        let (size, sha256) = tinydit_release::bundle::hash_file(&full).expect("hash");
        manifest.files.push(tinydit_release::bundle::BundleFile {
            path: (*path).to_owned(),
            bytes: size,
            sha256,
        });
    }
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).expect("json"),
    )
    .expect("manifest");
}

/// Publish, delete the Hub repo and create it again (empty), publish again: the bytes the
/// first release uploaded belong to the deleted repo, so the second must upload them again,
/// and it survives the Hub refusing its first commit while the fresh objects propagate.
#[test]
fn a_hub_repo_deleted_and_created_again_gets_its_files_uploaded_again() {
    let world = World::new();
    world.publish("1.0.0").status(0);
    let repo = json!({"name": "tinydit", "organization": "alice", "type": "model"});
    let mut response = ureq::delete(format!("{}/api/repos/delete", world.hub.url))
        .header("Authorization", format!("Bearer {HF_TOKEN}"))
        .force_send_body()
        .send(repo.to_string())
        .expect("delete");
    assert_eq!(
        response.status().as_u16(),
        200,
        "{:?}",
        response.body_mut().read_to_string()
    );
    post(
        &format!("{}/api/repos/create", world.hub.url),
        Some(HF_TOKEN),
        &repo,
    );
    post(
        &format!("{}/_emulator/seed", world.hub.url),
        None,
        &json!({"config": {"lfs_propagation_lag": 1}}),
    );
    let before = world.hub.requests().len();
    let rerun = world.publish("1.0.0");
    rerun.status(0);
    let log = world.hub.requests();
    let commits = answers(&log[before..], |r| {
        r["method"] == "POST" && path_of(r).contains("/commit/")
    });
    assert_eq!(
        commits.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [Some(400), Some(200)],
        "refused once while propagating, then committed: {}",
        rerun.stderr
    );
    assert_eq!(world.hub_commits("main").len(), 2, "one release commit");
    assert_eq!(
        world.hub_refs()["tags"].as_array().map(Vec::len),
        Some(1),
        "one tag"
    );
    // The tag's tree names exactly the bundle's bytes, through Xet.
    let tree = world.hub.get(
        &format!("/api/models/{REPO}/tree/v1.0.0?recursive=true&expand=true"),
        HF_TOKEN,
    );
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(world.ctx.path().join("dist/manifest.json")).expect("manifest"),
    )
    .expect("JSON");
    let weights = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == "model.safetensors")
        .expect("weights");
    let entry = tree
        .as_array()
        .expect("tree")
        .iter()
        .find(|e| e["path"] == "model.safetensors")
        .expect("entry");
    assert_eq!(entry["lfs"]["oid"], weights["sha256"]);
    assert!(entry["xetHash"].is_string());
    world
        .publish("1.0.0")
        .status(0)
        .stderr_has("already released");
}

/// The Hub's 429 carries `RateLimit: "api";r=0;t=…` and no `Retry-After` (hf-hub keeps
/// neither): publish asks how long the limit holds and waits that long, once.
#[test]
fn the_hubs_rate_limit_is_waited_out_as_its_ratelimit_header_says() {
    let world = World::new();
    world.hub.faults(&json!({"faults": [
        {"method": "GET", "path": "/api/models/*/*/refs", "action": "rate_limit", "reset_s": 2, "times": 1}
    ]}));
    world.publish("1.0.0").status(0);
    let log = world.hub.requests();
    let api = answers(&log, |r| r["origin"] == "api");
    let first = api
        .iter()
        .position(|(_, s)| *s == Some(429))
        .expect("a 429");
    let limited = api.iter().filter(|(_, s)| *s == Some(429)).count();
    assert!(
        limited <= 2,
        "asked once, then waited: {limited} answers were 429"
    );
    let next = api[first..]
        .iter()
        .find(|(_, s)| *s == Some(200))
        .expect("an answer after the limit");
    assert!(
        next.0 - api[first].0 >= 1900,
        "waited {} ms of the 2 s the Hub asked for",
        next.0 - api[first].0
    );
    assert_eq!(world.hub_commits("main").len(), 2);
    assert_eq!(world.releases().len(), 1);
}

/// A limit that holds longer than the wait cap (60 s) is reported at once, naming it.
#[test]
fn a_hub_rate_limit_longer_than_the_cap_stops_with_a_message_naming_it() {
    let world = World::new();
    world.hub.faults(&json!({"faults": [
        {"method": "GET", "path": "/api/models/*/*/refs", "action": "rate_limit", "reset_s": 600, "times": 1}
    ]}));
    let started = std::time::Instant::now();
    let failed = world.publish("1.0.0");
    failed
        .status(2)
        .stderr_has("the Hub is rate limiting this token")
        .stderr_has("re-run `publish`");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "not waited"
    );
    let limited = world
        .hub
        .requests()
        .iter()
        .filter(|r| r["status"] == 429)
        .count();
    assert!(limited <= 2, "{limited} requests were 429");
    assert!(world.hub.writes().is_empty());
}

/// GitHub's secondary limit (403 with `retry-after`) and primary limit (403 or 429 with
/// `x-ratelimit-remaining: 0`) are waited out; neither is taken for a missing permission.
#[test]
fn githubs_rate_limits_are_waited_out_and_never_blamed_on_permissions() {
    let faults = [
        json!({"method": "POST", "path": "/repos/*/*/releases", "action": "rate_limit",
               "secondary": true, "reset_s": 1, "times": 1}),
        json!({"method": "POST", "path": "/repos/*/*/git/refs", "action": "rate_limit",
               "reset_s": 1, "times": 1}),
        json!({"method": "POST", "origin": "uploads", "path": "/**", "action": "rate_limit",
               "status": 429, "reset_s": 1, "times": 1}),
    ];
    for fault in faults {
        let world = World::new();
        world.github.faults(&json!({"faults": [fault]}));
        let published = world.publish("1.0.0");
        published.status(0);
        assert!(
            !published.stderr.contains("contents: write"),
            "{fault}: {}",
            published.stderr
        );
        let log = world.github.requests();
        let limited: Vec<&Value> = log.iter().filter(|r| r["fault"] == "rate_limit").collect();
        assert!(!limited.is_empty(), "{fault}: the limit fired");
        let first = limited[0]["ts_ms"].as_u64().expect("ts");
        // The next request after the limited one in the log's order: a request that arrived in
        // the same millisecond but before it is not a resumption.
        let at = log
            .iter()
            .position(|r| r["fault"] == "rate_limit")
            .expect("the limit fired");
        let resumed = log[at + 1..]
            .iter()
            .find(|r| r["fault"].is_null())
            .and_then(|r| r["ts_ms"].as_u64())
            .expect("resumed");
        assert!(
            resumed - first >= 900,
            "{fault}: waited only {} ms",
            resumed - first
        );
        let releases = world.releases();
        assert_eq!(releases.len(), 1, "{fault}");
        assert_eq!(releases[0]["draft"], false, "{fault}");
        assert_eq!(
            releases[0]["assets"].as_array().map(Vec::len),
            Some(2),
            "{fault}"
        );
    }
}

#[test]
fn a_github_rate_limit_longer_than_the_cap_stops_with_a_message_naming_it() {
    let world = World::new();
    world.github.faults(&json!({"faults": [
        {"method": "POST", "path": "/repos/*/*/git/refs", "action": "rate_limit", "reset_s": 3600, "times": 1}
    ]}));
    let started = std::time::Instant::now();
    let failed = world.publish("1.0.0");
    failed
        .status(2)
        .stderr_has("GitHub is rate limiting this token")
        .stderr_has("re-run `publish`");
    assert!(
        !failed.stderr.contains("contents: write"),
        "{}",
        failed.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // Once the limit is lifted (a new window), a plain re-run finishes the release.
    post(
        &format!("{}/_emulator/seed", world.github.url),
        None,
        &json!({"config": {}}),
    );
    world.publish("1.0.0").status(0);
    assert_eq!(world.releases().len(), 1);
}

/// The Actions `GITHUB_TOKEN` and App tokens read no truthful `permissions` (none, or
/// `push: false`) yet may write: publish does not refuse them up front. One that really lacks
/// `contents: write` is refused at its first write, with the scope hint.
#[test]
fn installation_tokens_publish_though_they_read_no_push_permission() {
    const INSTALLATION: &str = "ghs_installation_s3cr3t";
    const READER: &str = "ghs_installation_reader_s3cr3t";
    for shown in ["absent", "pull"] {
        let world = World::new();
        post(
            &format!("{}/_emulator/seed", world.github.url),
            None,
            &json!({
                "config": {"installation_permissions": shown},
                "tokens": [
                    {"token": INSTALLATION, "user": "github-actions[bot]", "orgs": ["alice"],
                     "scopes": ["contents:write"], "kind": "installation"},
                    {"token": READER, "user": "github-actions[bot]", "orgs": ["alice"],
                     "scopes": ["contents:read"], "kind": "installation"}
                ]
            }),
        );
        let mut command = world.command(
            &["publish", "--bundle", "dist", "--version", "1.0.0"],
            false,
        );
        command
            .env("HF_TOKEN", HF_TOKEN)
            .env("GITHUB_TOKEN", INSTALLATION);
        outcome(command).status(0);
        let releases = world.releases();
        assert_eq!(releases.len(), 1, "{shown}");
        assert_eq!(releases[0]["draft"], false, "{shown}");

        let world = World::new();
        post(
            &format!("{}/_emulator/seed", world.github.url),
            None,
            &json!({
                "config": {"installation_permissions": shown},
                "tokens": [
                    {"token": READER, "user": "github-actions[bot]", "orgs": ["alice"],
                     "scopes": ["contents:read"], "kind": "installation"}
                ]
            }),
        );
        let mut command = world.command(
            &["publish", "--bundle", "dist", "--version", "1.0.0"],
            false,
        );
        command
            .env("HF_TOKEN", HF_TOKEN)
            .env("GITHUB_TOKEN", READER);
        let refused = outcome(command);
        refused.status(2).stderr_has("contents: write");
        assert!(
            !world
                .github
                .requests()
                .iter()
                .any(|r| r["method"] == "POST" && r["status"] == 201),
            "nothing was written on GitHub"
        );
    }
}

/// GitHub renames assets (`gen (fp16)+cpu.onnx` → `gen.fp16.cpu.onnx`): they are uploaded and
/// compared under that name, so a re-run finds them present.
#[test]
fn renamed_assets_are_found_by_a_rerun() {
    let world = World::new();
    bundle_files(
        &world,
        "1.0.0",
        &[("onnx/gen (fp16)+cpu~1.onnx", b"\x08\x07\x00fp16".to_vec())],
    );
    let published = world.publish("1.0.0");
    published
        .status(0)
        .stderr_has("`onnx/gen (fp16)+cpu~1.onnx` is attached as `gen.fp16.cpu.1.onnx`");
    let releases = world.releases();
    let mut names: Vec<&str> = releases[0]["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["gen.fp16.cpu.1.onnx", "gen.onnx", "model.safetensors"]
    );
    let uploads = |world: &World| {
        world
            .github
            .requests()
            .iter()
            .filter(|r| r["origin"] == "uploads")
            .count()
    };
    let before = uploads(&world);
    world
        .publish("1.0.0")
        .status(0)
        .stderr_has("already released");
    assert_eq!(uploads(&world), before, "nothing uploaded again");
}

/// A draft with more than 100 assets: a re-run lists every page and uploads nothing twice.
#[test]
fn a_rerun_pages_through_more_than_100_assets() {
    let world = World::with_toml(&super::release_toml("").replace(
        "github-assets = [\"*.safetensors\", \"onnx/*.onnx\"]",
        "github-assets = [\"parts/*.txt\"]",
    ));
    let parts: Vec<(String, Vec<u8>)> = (0..105)
        .map(|i| {
            (
                format!("parts/p{i:03}.txt"),
                format!("part {i}\n").into_bytes(),
            )
        })
        .collect();
    let parts: Vec<(&str, Vec<u8>)> = parts.iter().map(|(p, b)| (p.as_str(), b.clone())).collect();
    bundle_files(&world, "1.0.0", &parts);
    // The publish PATCH fails every attempt: a draft with all 105 assets is left.
    world.github.faults(&json!({"faults": [
        {"method": "PATCH", "path": "/repos/*/*/releases/*", "action": "status", "status": 500}
    ]}));
    world.publish("1.0.0").status(2);
    let drafts = world.releases();
    assert_eq!(drafts[0]["draft"], true);
    assert_eq!(drafts[0]["assets"].as_array().map(Vec::len), Some(105));
    world.github.faults(&json!({"faults": []}));
    let before = world.github.requests().len();
    world.publish("1.0.0").status(0);
    let log = world.github.requests();
    let rerun = &log[before..];
    assert!(
        !rerun.iter().any(|r| r["origin"] == "uploads"),
        "no asset uploaded twice"
    );
    assert!(
        rerun.iter().any(|r| {
            path_of(r).ends_with("/assets")
                && r["query"].as_str().is_some_and(|q| q.contains("page=2"))
        }),
        "the second page was read"
    );
    let releases = world.releases();
    assert_eq!(releases[0]["draft"], false);
    assert_eq!(releases[0]["assets"].as_array().map(Vec::len), Some(105));
}

/// A bundle built from a commit GitHub does not have cannot be tagged there: refused before
/// anything is written, saying to push it.
#[test]
fn a_source_commit_github_does_not_have_is_refused_before_any_write() {
    let world = World::new();
    let manifest_path = world.ctx.path().join("dist/manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("JSON");
    let unpushed = "0123456789abcdef0123456789abcdef01234567";
    manifest["source"]["commit"] = json!(unpushed);
    std::fs::write(&manifest_path, manifest.to_string()).expect("manifest");
    // This run releases that commit (`publish --bundle` refuses a bundle of another one).
    let mut command = world.command(
        &[
            "publish",
            "--bundle",
            "dist",
            "--version",
            "1.0.0",
            "--json",
        ],
        true,
    );
    command.env("GITHUB_SHA", unpushed);
    let refused = outcome(command);
    refused
        .status(2)
        .stderr_has(&format!("the source commit `{unpushed}` is not on GitHub"))
        .stderr_has("push the commit to GitHub first");
    assert!(world.hub.writes().is_empty(), "{:?}", world.hub.writes());
    assert!(world.releases().is_empty());
}

/// The Hub's "Cannot create repo: another conflicting operation is in progress" 409 passes:
/// the create is retried (hf-hub's `exist_ok` would have taken it for "exists").
#[test]
fn a_passing_conflict_on_the_hub_repo_create_is_retried() {
    let world = World::new();
    world.hub.faults(&json!({"faults": [
        {"method": "POST", "path": "/api/repos/create", "action": "status", "status": 409,
         "message": "Cannot create repo: another conflicting operation is in progress", "times": 1}
    ]}));
    world.publish("1.0.0").status(0);
    let creates = answers(&world.hub.requests(), |r| path_of(r) == "/api/repos/create");
    assert_eq!(
        creates.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [Some(409), Some(200)]
    );
    assert_eq!(world.hub_commits("main").len(), 2);
}
