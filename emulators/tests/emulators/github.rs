//! The GitHub emulator driven over plain HTTP: refs and annotated tags, the draft → assets →
//! publish order, latest, pagination, immutable releases, token scopes, asset limits,
//! persistence and faults.

use serde_json::{Value, json};

use crate::common::{Emulator, GITHUB, Reply, call};

const WRITE: &str = "ghs_test_write";
const READ: &str = "ghs_test_read";
const REPO: &str = "octo/model";

fn github(immutable: bool, config: Option<Value>) -> (tempfile::TempDir, Emulator) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seed = json!({
        "tokens": [
            {"token": WRITE, "user": "octo", "scopes": ["contents:write"]},
            {"token": READ, "user": "octo", "scopes": ["contents:read"]},
        ],
        "repos": [
            {"owner": "octo", "name": "model", "immutable_releases": immutable, "commits": ["first", "second"]},
            {"owner": "octo", "name": "secret", "private": true},
        ],
    });
    if let Some(config) = config {
        seed["config"] = config;
    }
    let emu = Emulator::start(GITHUB, &dir.path().join("data"), &seed);
    (dir, emu)
}

fn api(emu: &Emulator, method: &str, path: &str) -> crate::common::Call {
    call(method, &format!("{}/repos/{REPO}{path}", emu.url))
}

fn main_sha(emu: &Emulator) -> String {
    let reply = api(emu, "GET", "/git/ref/heads/main").send();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["object"]["sha"]
        .as_str()
        .expect("sha")
        .to_owned()
}

fn create_release(emu: &Emulator, body: &Value) -> Reply {
    api(emu, "POST", "/releases").token(WRITE).json(body).send()
}

fn upload(release: &Value, name: &str, bytes: &[u8]) -> Reply {
    let template = release["upload_url"].as_str().expect("upload_url");
    let base = template.strip_suffix("{?name,label}").expect("template");
    call(
        "POST",
        &format!("{base}?name={}", emulators::util::percent_encode(name)),
    )
    .token(WRITE)
    .body("application/octet-stream", bytes.to_vec())
    .send()
}

fn error_code(reply: &Reply) -> String {
    reply.json()["errors"][0]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn repo_refs_and_annotated_tags() {
    let (_dir, emu) = github(false, None);
    let repo = api(&emu, "GET", "").send();
    assert_eq!(repo.status, 200);
    assert_eq!(repo.json()["full_name"], REPO);
    assert_eq!(repo.json()["default_branch"], "main");
    let sha = main_sha(&emu);
    assert!(emulators::util::is_hex(&sha, 40));

    let make = |r: &str, s: &str| {
        api(&emu, "POST", "/git/refs")
            .token(WRITE)
            .json(&json!({"ref": r, "sha": s}))
            .send()
    };
    assert_eq!(make("refs/tags/v1.0.0", &sha).status, 201);
    let again = make("refs/tags/v1.0.0", &sha);
    assert_eq!(again.status, 422);
    assert_eq!(again.json()["message"], "Reference already exists");
    assert_eq!(make("refs/tags/v9", &"0".repeat(40)).status, 422);
    let got = api(&emu, "GET", "/git/ref/tags/v1.0.0").send();
    assert_eq!(got.json()["object"]["sha"], sha.as_str());
    assert_eq!(api(&emu, "GET", "/git/ref/tags/v2").send().status, 404);

    let tag = api(&emu, "POST", "/git/tags")
        .token(WRITE)
        .json(&json!({"tag": "v1", "message": "major", "object": sha, "type": "commit"}))
        .send();
    assert_eq!(tag.status, 201, "{}", tag.text());
    let tag_sha = tag.json()["sha"].as_str().expect("sha").to_owned();
    assert_ne!(tag_sha, sha);
    assert_eq!(make("refs/tags/v1", &tag_sha).status, 201);
    let r = api(&emu, "GET", "/git/ref/tags/v1").send().json();
    assert_eq!(r["object"]["type"], "tag");
    let obj = api(&emu, "GET", &format!("/git/tags/{tag_sha}"))
        .send()
        .json();
    assert_eq!(obj["object"]["sha"], sha.as_str());
    let matching = api(&emu, "GET", "/git/matching-refs/tags/v1").send().json();
    assert_eq!(matching.as_array().map(Vec::len), Some(2));

    // Moving a tag: not a fast forward without force; with force it moves.
    let first = api(&emu, "GET", "/commits/main").send().json()["parents"][0]["sha"]
        .as_str()
        .expect("parent")
        .to_owned();
    let mv = |force: bool| {
        api(&emu, "PATCH", "/git/refs/tags/v1.0.0")
            .token(WRITE)
            .json(&json!({"sha": first, "force": force}))
            .send()
    };
    assert_eq!(mv(false).status, 422);
    assert_eq!(mv(true).status, 200);
    assert_eq!(
        api(&emu, "DELETE", "/git/refs/tags/v1.0.0")
            .token(WRITE)
            .send()
            .status,
        204
    );
    assert_eq!(
        api(&emu, "DELETE", "/git/refs/tags/v1.0.0")
            .token(WRITE)
            .send()
            .status,
        422
    );
}

#[test]
fn draft_assets_then_publish() {
    let (_dir, emu) = github(false, None);
    let sha = main_sha(&emu);
    let draft = create_release(
        &emu,
        &json!({"tag_name": "v1.0.0", "target_commitish": "main", "name": "v1.0.0", "body": "notes", "draft": true}),
    );
    assert_eq!(draft.status, 201, "{}", draft.text());
    let draft = draft.json();
    assert_eq!(draft["draft"], true);
    assert_eq!(draft["published_at"], Value::Null);
    let id = draft["id"].as_u64().expect("id");
    assert!(
        draft["upload_url"]
            .as_str()
            .expect("url")
            .starts_with(&emu.second),
        "uploads not on their own origin"
    );
    // Drafts: no tag yet, invisible by tag, listed only for writers.
    assert_eq!(api(&emu, "GET", "/git/ref/tags/v1.0.0").send().status, 404);
    assert_eq!(
        api(&emu, "GET", "/releases/tags/v1.0.0")
            .token(WRITE)
            .send()
            .status,
        404
    );
    assert_eq!(
        api(&emu, "GET", "/releases")
            .send()
            .json()
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        api(&emu, "GET", "/releases")
            .token(WRITE)
            .send()
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let bytes = b"safetensors bytes".repeat(50);
    let asset = upload(&draft, "model card & weights.safetensors", &bytes);
    assert_eq!(asset.status, 201, "{}", asset.text());
    let asset = asset.json();
    assert_eq!(asset["name"], "model.card.weights.safetensors");
    assert_eq!(asset["size"], bytes.len());
    assert_eq!(
        asset["digest"],
        format!("sha256:{}", emulators::util::sha256_hex(&bytes))
    );
    let dup = upload(&draft, "model card & weights.safetensors", b"other");
    assert_eq!(dup.status, 422);
    assert_eq!(error_code(&dup), "already_exists");
    let download = call("GET", asset["browser_download_url"].as_str().expect("url"))
        .token(WRITE)
        .send();
    assert_eq!(download.status, 200);
    assert_eq!(download.body, bytes);
    let listed = api(&emu, "GET", &format!("/releases/{id}/assets"))
        .token(WRITE)
        .send()
        .json();
    assert_eq!(listed[0]["id"], asset["id"]);

    let published = api(&emu, "PATCH", &format!("/releases/{id}"))
        .token(WRITE)
        .json(&json!({"draft": false, "make_latest": "true"}))
        .send();
    assert_eq!(published.status, 200, "{}", published.text());
    assert_eq!(published.json()["draft"], false);
    assert!(published.json()["published_at"].is_string());
    assert_eq!(
        api(&emu, "GET", "/git/ref/tags/v1.0.0").send().json()["object"]["sha"],
        sha.as_str()
    );
    let by_tag = api(&emu, "GET", "/releases/tags/v1.0.0").send();
    assert_eq!(by_tag.status, 200);
    assert_eq!(by_tag.json()["assets"][0]["digest"], asset["digest"]);
    assert_eq!(api(&emu, "GET", "/releases/latest").send().json()["id"], id);
    // The published asset downloads anonymously under the tag.
    let url = format!(
        "{}/{REPO}/releases/download/v1.0.0/model.card.weights.safetensors",
        emu.url
    );
    assert_eq!(call("GET", &url).send().body, bytes);

    let second = create_release(&emu, &json!({"tag_name": "v1.0.0"}));
    assert_eq!(second.status, 422);
    assert_eq!(error_code(&second), "already_exists");
    // Deleting an asset of a mutable release works.
    let aid = asset["id"].as_u64().expect("id");
    assert_eq!(
        api(&emu, "DELETE", &format!("/releases/assets/{aid}"))
            .token(WRITE)
            .send()
            .status,
        204
    );
    assert_eq!(
        api(&emu, "GET", &format!("/releases/assets/{aid}"))
            .token(WRITE)
            .send()
            .status,
        404
    );
}

#[test]
fn latest_skips_prereleases_and_make_latest_false() {
    let (_dir, emu) = github(false, None);
    assert_eq!(api(&emu, "GET", "/releases/latest").send().status, 404);
    let v1 = create_release(&emu, &json!({"tag_name": "v1.0.0"})).json();
    let rc = create_release(
        &emu,
        &json!({"tag_name": "v2.0.0-rc.1", "prerelease": true}),
    );
    assert_eq!(rc.status, 201);
    assert_eq!(rc.json()["prerelease"], true);
    let backport = create_release(&emu, &json!({"tag_name": "v0.9.1", "make_latest": "false"}));
    assert_eq!(backport.status, 201);
    assert_eq!(
        api(&emu, "GET", "/releases/latest").send().json()["id"],
        v1["id"]
    );
    let bad = create_release(&emu, &json!({"tag_name": "v3", "make_latest": "sometimes"}));
    assert_eq!(bad.status, 422);
    let id = v1["id"].as_u64().expect("id");
    assert_eq!(
        api(&emu, "DELETE", &format!("/releases/{id}"))
            .token(WRITE)
            .send()
            .status,
        204
    );
    // With v1 gone, the newest published non-prerelease (the backport) is latest.
    assert_eq!(
        api(&emu, "GET", "/releases/latest").send().json()["id"],
        backport.json()["id"]
    );
}

#[test]
fn releases_paginate_with_link_headers() {
    let (_dir, emu) = github(false, None);
    for i in 0..5 {
        assert_eq!(
            create_release(&emu, &json!({"tag_name": format!("v1.0.{i}")})).status,
            201
        );
    }
    let first = api(&emu, "GET", "/releases?per_page=2").send();
    assert_eq!(first.json().as_array().map(Vec::len), Some(2));
    let link = first.header("link").expect("link").to_owned();
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    let last = api(&emu, "GET", "/releases?per_page=2&page=3").send();
    let items = last.json();
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    assert_eq!(items[0]["tag_name"], "v1.0.0", "newest first");
    assert!(!last.header("link").unwrap_or("").contains("rel=\"next\""));
}

#[test]
fn immutable_releases_lock_assets_and_tags_and_burn_deleted_tags() {
    let (_dir, emu) = github(true, None);
    let draft = create_release(&emu, &json!({"tag_name": "v1.0.0", "draft": true})).json();
    let id = draft["id"].as_u64().expect("id");
    // A draft is still mutable.
    let asset = upload(&draft, "a.bin", b"aaaa");
    assert_eq!(asset.status, 201);
    let published = api(&emu, "PATCH", &format!("/releases/{id}"))
        .token(WRITE)
        .json(&json!({"draft": false}))
        .send();
    assert_eq!(published.json()["immutable"], true);
    assert_eq!(upload(&draft, "b.bin", b"bbbb").status, 422);
    let aid = asset.json()["id"].as_u64().expect("id");
    assert_eq!(
        api(&emu, "DELETE", &format!("/releases/assets/{aid}"))
            .token(WRITE)
            .send()
            .status,
        422
    );
    assert_eq!(
        api(&emu, "DELETE", "/git/refs/tags/v1.0.0")
            .token(WRITE)
            .send()
            .status,
        422
    );
    let sha = main_sha(&emu);
    let mv = api(&emu, "PATCH", "/git/refs/tags/v1.0.0")
        .token(WRITE)
        .json(&json!({"sha": sha, "force": true}))
        .send();
    assert_eq!(mv.status, 422);
    let retag = api(&emu, "PATCH", &format!("/releases/{id}"))
        .token(WRITE)
        .json(&json!({"tag_name": "v1.0.1"}))
        .send();
    assert_eq!(retag.status, 422);
    // Notes may still change.
    let notes = api(&emu, "PATCH", &format!("/releases/{id}"))
        .token(WRITE)
        .json(&json!({"body": "fixed notes"}))
        .send();
    assert_eq!(notes.status, 200);
    assert_eq!(
        api(&emu, "DELETE", &format!("/releases/{id}"))
            .token(WRITE)
            .send()
            .status,
        204
    );
    let again = create_release(&emu, &json!({"tag_name": "v1.0.0"}));
    assert_eq!(
        again.status, 422,
        "a deleted immutable release's tag was reused"
    );
    let again = create_release(&emu, &json!({"tag_name": "v1.0.0", "draft": true}));
    assert_eq!(again.status, 422);
}

#[test]
fn token_scopes_and_private_repos() {
    let (_dir, emu) = github(false, None);
    let body = json!({"tag_name": "v1"});
    let reply = api(&emu, "POST", "/releases").json(&body).send();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["message"], "Requires authentication");
    let reply = api(&emu, "POST", "/releases")
        .token("ghs_unknown")
        .json(&body)
        .send();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["message"], "Bad credentials");
    let reply = api(&emu, "POST", "/releases")
        .token(READ)
        .json(&body)
        .send();
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.json()["message"],
        "Resource not accessible by integration"
    );
    let reply = api(&emu, "POST", "/git/refs")
        .token(READ)
        .json(&json!({"ref": "refs/tags/x", "sha": main_sha(&emu)}))
        .send();
    assert_eq!(reply.status, 403);
    // GitHub's `token X` scheme works as well as Bearer.
    let reply = api(&emu, "POST", "/releases")
        .header("authorization", &format!("token {WRITE}"))
        .json(&body)
        .send();
    assert_eq!(reply.status, 201);
    assert_eq!(
        call("GET", &format!("{}/repos/octo/secret", emu.url))
            .send()
            .status,
        404
    );
    assert_eq!(
        call("GET", &format!("{}/repos/octo/secret", emu.url))
            .token(READ)
            .send()
            .status,
        200
    );
    let log = std::fs::read_to_string(emu.data.join("requests.jsonl")).expect("log");
    assert!(!log.contains(WRITE) && !log.contains(READ));
}

#[test]
fn asset_size_limit_and_missing_name() {
    let (_dir, emu) = github(false, Some(json!({"max_asset_bytes": 10})));
    let draft = create_release(&emu, &json!({"tag_name": "v1", "draft": true})).json();
    assert_eq!(upload(&draft, "ok.bin", b"0123456789").status, 201);
    let big = upload(&draft, "big.bin", b"0123456789A");
    assert_eq!(big.status, 422, "{}", big.text());
    let base = draft["upload_url"]
        .as_str()
        .expect("url")
        .trim_end_matches("{?name,label}")
        .to_owned();
    let nameless = call("POST", &base)
        .token(WRITE)
        .body("application/octet-stream", b"x".to_vec())
        .send();
    assert_eq!(nameless.status, 422);
}

#[test]
fn state_survives_a_restart_and_urls_follow_the_new_ports() {
    let (_dir, emu) = github(false, None);
    let release = create_release(&emu, &json!({"tag_name": "v1", "draft": true})).json();
    assert_eq!(upload(&release, "a.bin", b"kept").status, 201);
    let id = release["id"].as_u64().expect("id");
    let emu = emu.restart();
    let got = api(&emu, "GET", &format!("/releases/{id}"))
        .token(WRITE)
        .send();
    assert_eq!(got.status, 200);
    let got = got.json();
    assert!(
        got["upload_url"]
            .as_str()
            .expect("url")
            .starts_with(&emu.second)
    );
    let url = got["assets"][0]["browser_download_url"]
        .as_str()
        .expect("url");
    assert!(url.starts_with(&emu.url));
    assert_eq!(call("GET", url).token(WRITE).send().body, b"kept");
    // Ids keep counting after the restart.
    let next = create_release(&emu, &json!({"tag_name": "v2"})).json();
    assert!(next["id"].as_u64().expect("id") > id);
}

#[test]
fn lost_response_on_create_release_makes_the_retry_conflict() {
    let (_dir, emu) = github(false, None);
    emu.faults(&json!({"faults": [{"method": "POST", "path": "/repos/octo/model/releases", "action": "lose_response", "times": 1}]}));
    let body = json!({"tag_name": "v1.0.0"});
    assert!(
        api(&emu, "POST", "/releases")
            .token(WRITE)
            .json(&body)
            .try_send()
            .is_err()
    );
    let retry = create_release(&emu, &body);
    assert_eq!(retry.status, 422);
    assert_eq!(error_code(&retry), "already_exists");
    assert_eq!(api(&emu, "GET", "/releases/tags/v1.0.0").send().status, 200);
    // Faults on the upload origin match by origin.
    emu.faults(&json!({"faults": [{"origin": "uploads", "path": "/**", "action": "status", "status": 502, "retry_after": "3"}]}));
    let draft = create_release(&emu, &json!({"tag_name": "v2", "draft": true}));
    assert_eq!(
        draft.status, 201,
        "the API origin was hit by an uploads fault"
    );
    let up = upload(&draft.json(), "a.bin", b"a");
    assert_eq!(up.status, 502);
    assert_eq!(up.header("retry-after"), Some("3"));
}

#[test]
fn unknown_routes_answer_501_on_both_origins() {
    let (_dir, emu) = github(false, None);
    let reply = api(&emu, "GET", "/pulls").send();
    assert_eq!(reply.status, 501);
    assert!(reply.text().contains("GET /repos/octo/model/pulls"));
    let reply = call("GET", &format!("{}/repos/{REPO}", emu.second)).send();
    assert_eq!(reply.status, 501, "the upload origin served an API route");
}

#[test]
fn rate_limits_primary_and_secondary_as_github_answers_them() {
    let (_dir, emu) = github(false, None);
    let read = || api(&emu, "GET", "").token(WRITE).send();
    // Every answer carries the primary limit's headers, with requests left.
    let ok = read();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-ratelimit-limit"), Some("5000"));
    assert_eq!(ok.header("x-ratelimit-remaining"), Some("4999"));
    assert_eq!(ok.header("x-ratelimit-resource"), Some("core"));
    assert!(ok.header("x-ratelimit-reset").is_some());

    // Primary: spent until the reset, on the API and the upload origin; 403 unless told 429.
    for status in [403u16, 429] {
        let mut fault =
            json!({"path": "/repos/*/*", "action": "rate_limit", "reset_s": 1, "times": 1});
        if status == 429 {
            fault["status"] = json!(429);
        }
        emu.faults(&json!({"faults": [fault]}));
        let limited = read();
        assert_eq!(limited.status, status, "{}", limited.text());
        assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
        let reset: u64 = limited
            .header("x-ratelimit-reset")
            .and_then(|r| r.parse().ok())
            .expect("reset");
        assert!(reset >= emulators::util::now_secs());
        assert!(limited.text().contains("API rate limit exceeded"));
        assert!(limited.header("retry-after").is_none());
        let upload = call(
            "POST",
            &format!("{}/repos/{REPO}/releases/1/assets?name=a.bin", emu.second),
        )
        .token(WRITE)
        .body("application/octet-stream", b"x".to_vec())
        .send();
        assert_eq!(upload.status, status, "uploads count too");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(read().status, 200);
    }

    // Secondary: 403 with `retry-after` while the primary limit shows requests left.
    emu.faults(&json!({"faults": [
        {"method": "POST", "path": "/repos/*/*/releases", "action": "rate_limit", "secondary": true, "reset_s": 1, "times": 1}
    ]}));
    let limited = create_release(&emu, &json!({"tag_name": "v1", "draft": true}));
    assert_eq!(limited.status, 403);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_ne!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert!(
        limited
            .text()
            .contains("You have exceeded a secondary rate limit")
    );
    assert_eq!(read().status, 403, "held until the retry-after passes");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(read().status, 200);
    assert!(
        api(&emu, "GET", "/releases").token(WRITE).send().json()[0].is_null(),
        "the limited create did nothing"
    );
}

#[test]
fn installation_tokens_read_no_truthful_permissions_but_may_write() {
    for (shown, permissions) in [
        ("absent", Value::Null),
        (
            "pull",
            json!({"admin": false, "maintain": false, "push": false, "triage": false, "pull": true}),
        ),
    ] {
        let (_dir, emu) = github(false, Some(json!({"installation_permissions": shown})));
        let seeded = call("POST", &format!("{}/_emulator/seed", emu.url))
            .json(&json!({"tokens": [
                {"token": "ghs_installation", "user": "github-actions[bot]", "orgs": ["octo"],
                 "scopes": ["contents:write"], "kind": "installation"},
                {"token": "ghs_reader", "user": "github-actions[bot]", "orgs": ["octo"],
                 "scopes": ["contents:read"], "kind": "installation"}
            ]}))
            .send();
        assert_eq!(seeded.status, 200, "{}", seeded.text());
        let repo = api(&emu, "GET", "").token("ghs_installation").send().json();
        assert_eq!(repo["permissions"], permissions, "{shown}");
        // A personal token sees its own permissions.
        assert_eq!(
            api(&emu, "GET", "").token(WRITE).send().json()["permissions"]["push"],
            true
        );
        let sha = main_sha(&emu);
        let tag = api(&emu, "POST", "/git/refs")
            .token("ghs_installation")
            .json(&json!({"ref": "refs/tags/v1", "sha": sha}))
            .send();
        assert_eq!(tag.status, 201, "{}", tag.text());
        let refused = api(&emu, "POST", "/git/refs")
            .token("ghs_reader")
            .json(&json!({"ref": "refs/tags/v2", "sha": sha}))
            .send();
        assert_eq!(refused.status, 403);
        assert_eq!(
            refused.json()["message"],
            "Resource not accessible by integration"
        );
        // A tag for a commit GitHub does not have.
        let missing = api(&emu, "POST", "/git/refs")
            .token("ghs_installation")
            .json(&json!({"ref": "refs/tags/v3", "sha": "1".repeat(40)}))
            .send();
        assert_eq!(missing.status, 422);
        assert_eq!(missing.json()["message"], "Object does not exist");
    }
}

#[test]
fn asset_names_are_renamed_and_lists_page_at_100() {
    let (_dir, emu) = github(false, Some(json!({"max_assets": 103})));
    let draft = create_release(&emu, &json!({"tag_name": "v1.0.0", "draft": true})).json();
    let id = draft["id"].as_u64().expect("id");
    let renamed = upload(&draft, "tinydit 1.0+cpu (fp16)~x.onnx", b"onnx");
    assert_eq!(renamed.status, 201, "{}", renamed.text());
    assert_eq!(renamed.json()["name"], "tinydit.1.0.cpu.fp16.x.onnx");
    // Uploading the name GitHub gave finds the same asset.
    let again = upload(&draft, "tinydit.1.0.cpu.fp16.x.onnx", b"onnx");
    assert_eq!(again.status, 422);
    assert_eq!(error_code(&again), "already_exists");
    assert_eq!(
        upload(&draft, ".config", b"c").json()["name"],
        "default.config"
    );
    for i in 0..101 {
        assert_eq!(
            upload(&draft, &format!("part-{i:03}.bin"), b"p").status,
            201
        );
    }
    // 103 assets: a release holds no more.
    let full = upload(&draft, "one-more.bin", b"p");
    assert_eq!(full.status, 422, "{}", full.text());
    // At most 100 a page, whatever `per_page` asks; `Link` names the next page.
    let first = api(&emu, "GET", &format!("/releases/{id}/assets?per_page=500"))
        .token(WRITE)
        .send();
    assert_eq!(first.json().as_array().map(Vec::len), Some(100));
    let link = first.header("link").expect("link").to_owned();
    assert!(
        link.contains("per_page=100&page=2>; rel=\"next\""),
        "{link}"
    );
    let default = api(&emu, "GET", &format!("/releases/{id}/assets"))
        .token(WRITE)
        .send();
    assert_eq!(default.json().as_array().map(Vec::len), Some(30));
    let second = api(
        &emu,
        "GET",
        &format!("/releases/{id}/assets?per_page=100&page=2"),
    )
    .token(WRITE)
    .send();
    assert_eq!(second.json().as_array().map(Vec::len), Some(3));
    assert!(!second.header("link").unwrap_or("").contains("rel=\"next\""));
}
