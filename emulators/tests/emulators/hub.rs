//! The Hub emulator driven over plain HTTP: repos, commits, conflicts, Xet bookkeeping,
//! resolve headers, persistence across a restart, fault injection and authentication.

use std::time::Instant;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{Emulator, HUB, Reply, call};

const WRITE: &str = "hf_test_write";
const READ: &str = "hf_test_read";

fn hub() -> (tempfile::TempDir, Emulator) {
    hub_with(&json!({}))
}

fn hub_with(config: &Value) -> (tempfile::TempDir, Emulator) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seed = json!({"tokens": [
        {"token": WRITE, "user": "alice", "scopes": ["read", "write"]},
        {"token": READ, "user": "alice", "scopes": ["read"]},
    ]});
    if config.as_object().is_some_and(|o| !o.is_empty()) {
        seed["config"] = config.clone();
    }
    let emu = Emulator::start(HUB, &dir.path().join("data"), &seed);
    (dir, emu)
}

fn create_repo(emu: &Emulator, name: &str) -> String {
    let reply = call("POST", &format!("{}/api/repos/create", emu.url))
        .token(WRITE)
        .json(&json!({"name": name, "organization": "alice"}))
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text());
    head(emu, &format!("alice/{name}"))
}

fn head(emu: &Emulator, repo: &str) -> String {
    let reply = call("GET", &format!("{}/api/models/{repo}", emu.url))
        .token(WRITE)
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["sha"].as_str().expect("sha").to_owned()
}

fn ndjson(lines: &[Value]) -> String {
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

fn commit(emu: &Emulator, repo: &str, parent: Option<&str>, ops: &[Value]) -> Reply {
    let mut header = json!({"summary": "test commit", "description": ""});
    if let Some(parent) = parent {
        header["parentCommit"] = json!(parent);
    }
    let mut lines = vec![json!({"key": "header", "value": header})];
    lines.extend_from_slice(ops);
    call(
        "POST",
        &format!("{}/api/models/{repo}/commit/main", emu.url),
    )
    .token(WRITE)
    .body("application/x-ndjson", ndjson(&lines))
    .send()
}

fn inline(path: &str, content: &[u8]) -> Value {
    json!({"key": "file", "value": {"path": path, "encoding": "base64",
        "content": base64::engine::general_purpose::STANDARD.encode(content)}})
}

/// The CAS folder the emulator keeps for `repo` (`cas/<id>`, an id of its own per repo).
fn cas_dir(emu: &Emulator, repo: &str) -> std::path::PathBuf {
    let state = call("GET", &format!("{}/_emulator/state", emu.url))
        .send()
        .json();
    let id = state["repos"][format!("model:{repo}")]["cas"]
        .as_str()
        .expect("cas id");
    assert_eq!(id.len(), 16, "{id}");
    emu.data.join("cas").join(id)
}

fn sha256_hex(bytes: &[u8]) -> String {
    emulators::util::sha256_hex(bytes)
}

/// A CAS shard (hub-protocol.md §8.1) naming one file: its Xet hash, size and sha256.
fn shard_bytes(xet_hash: &str, sha256: &str, size: u32) -> Vec<u8> {
    fn words(hex: &str) -> Vec<u8> {
        hex.as_bytes()
            .chunks(16)
            .flat_map(|c| {
                u64::from_str_radix(std::str::from_utf8(c).expect("hex"), 16)
                    .expect("hex")
                    .to_le_bytes()
            })
            .collect()
    }
    let mut data = b"HFRepoMetaData\0".to_vec();
    data.resize(32, 0x55);
    data.extend_from_slice(&2u64.to_le_bytes());
    data.extend_from_slice(&0u64.to_le_bytes());
    data.extend_from_slice(&words(xet_hash));
    data.extend_from_slice(&(1u32 << 30).to_le_bytes());
    data.extend_from_slice(&1u32.to_le_bytes());
    data.extend_from_slice(&[0; 8]);
    data.extend_from_slice(&[7; 32]);
    data.extend_from_slice(&0u32.to_le_bytes());
    data.extend_from_slice(&size.to_le_bytes());
    data.extend_from_slice(&[0; 8]);
    data.extend_from_slice(&words(sha256));
    data.extend_from_slice(&[0; 16]);
    data.extend_from_slice(&[0xff; 48]);
    data
}

#[test]
fn announces_url_and_answers_unknown_routes_with_501() {
    let (_dir, emu) = hub();
    let reply = call("GET", &format!("{}/api/spaceships?x=1", emu.url)).send();
    assert_eq!(reply.status, 501);
    assert!(
        reply.text().contains("GET /api/spaceships"),
        "{}",
        reply.text()
    );
    let reply = call("PUT", &format!("{}/api/models/a/b/commit/main", emu.url))
        .token(WRITE)
        .send();
    assert_eq!(reply.status, 501, "{}", reply.text());
    assert!(reply.text().contains("PUT /api/models/a/b/commit/main"));
}

#[test]
fn inline_commit_tree_and_resolve_with_range_and_etag() {
    let (_dir, emu) = hub();
    let initial = create_repo(&emu, "m");
    let readme = b"---\nlicense: mit\n---\n# Card\n";
    let reply = commit(
        &emu,
        "alice/m",
        Some(&initial),
        &[
            inline("README.md", readme),
            inline("docs/a.txt", b"hello\n"),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let oid = reply.json()["commitOid"]
        .as_str()
        .expect("commitOid")
        .to_owned();
    assert!(emulators::util::is_hex(&oid, 40), "{oid}");
    assert_ne!(oid, initial);
    assert_eq!(head(&emu, "alice/m"), oid);

    let tree = call(
        "GET",
        &format!("{}/api/models/alice/m/tree/main?recursive=true", emu.url),
    )
    .send()
    .json();
    let paths: Vec<&str> = tree
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert_eq!(paths, [".gitattributes", "README.md", "docs", "docs/a.txt"]);
    let a = &tree[3];
    // `printf 'hello\n' | git hash-object --stdin`
    assert_eq!(a["oid"], "ce013625030ba8dba906f756967f9e9ca394464a");
    assert_eq!(a["size"], 6);
    assert!(a.get("lfs").is_none());
    assert_eq!(tree[2]["type"], "directory");
    let top = call("GET", &format!("{}/api/models/alice/m/tree/main", emu.url))
        .send()
        .json();
    assert_eq!(top.as_array().map(Vec::len), Some(3), "{top}");

    let url = format!("{}/alice/m/resolve/main/docs/a.txt", emu.url);
    let reply = call("HEAD", &url).send();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-repo-commit"), Some(oid.as_str()));
    assert_eq!(
        reply.header("etag"),
        Some("\"ce013625030ba8dba906f756967f9e9ca394464a\"")
    );
    let reply = call("GET", &url).header("range", "bytes=1-3").send();
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body, b"ell");
    assert_eq!(reply.header("content-range"), Some("bytes 1-3/6"));
    let reply = call("GET", &url)
        .header(
            "if-none-match",
            "\"ce013625030ba8dba906f756967f9e9ca394464a\"",
        )
        .send();
    assert_eq!(reply.status, 304);
    let reply = call("GET", &url).header("range", "bytes=9-").send();
    assert_eq!(reply.status, 416);
    let reply = call(
        "HEAD",
        &format!("{}/alice/m/resolve/main/missing.txt", emu.url),
    )
    .send();
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("x-error-code"), Some("EntryNotFound"));
    let reply = call(
        "GET",
        &format!("{}/api/models/alice/m/revision/nope", emu.url),
    )
    .send();
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("x-error-code"), Some("RevisionNotFound"));

    let info = call(
        "GET",
        &format!("{}/api/models/alice/m/revision/{oid}", emu.url),
    )
    .send()
    .json();
    assert_eq!(info["sha"], oid.as_str());
    assert_eq!(info["cardData"]["license"], "mit");
    let commits = call(
        "GET",
        &format!("{}/api/models/alice/m/commits/main", emu.url),
    )
    .send()
    .json();
    assert_eq!(commits.as_array().map(Vec::len), Some(2));
    assert_eq!(commits[0]["id"], oid.as_str());
    assert_eq!(commits[1]["id"], initial.as_str());
}

#[test]
fn binary_inline_files_are_refused_unless_strict_mode_is_off() {
    let (_dir, emu) = hub();
    let initial = create_repo(&emu, "m");
    let reply = commit(
        &emu,
        "alice/m",
        Some(&initial),
        &[inline("w.bin", b"\x00\x01\x02weights")],
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .text()
            .contains("Your push was rejected because it contains binary files"),
        "{}",
        reply.text()
    );
    assert_eq!(
        head(&emu, "alice/m"),
        initial,
        "a refused commit moved main"
    );
    drop(emu);

    let (_dir2, lax) = hub_with(&json!({"reject_binary_inline": false}));
    let initial = create_repo(&lax, "m");
    let reply = commit(
        &lax,
        "alice/m",
        Some(&initial),
        &[inline("w.bin", b"\x00\x01\x02weights")],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn preupload_classifies_and_lfs_batch_answers_xet() {
    let (_dir, emu) = hub();
    let initial = create_repo(&emu, "m");
    let text = base64::engine::general_purpose::STANDARD.encode(b"plain text");
    let binary = base64::engine::general_purpose::STANDARD.encode(b"\x00\x9f binary");
    let reply = call(
        "POST",
        &format!("{}/api/models/alice/m/preupload/main", emu.url),
    )
    .token(WRITE)
    .json(&json!({"files": [
        {"path": "README.md", "size": 10, "sample": text},
        {"path": "w.bin", "size": 9, "sample": binary},
        {"path": "big.txt", "size": 10u64 << 20, "sample": text},
        {"path": "model.safetensors", "size": 10, "sample": text},
        {"path": ".gitattributes", "size": 10, "sample": text},
    ]}))
    .send();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let files = reply.json()["files"].clone();
    let modes: Vec<&str> = files
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["uploadMode"].as_str())
        .collect();
    assert_eq!(modes, ["regular", "lfs", "lfs", "lfs", "regular"]);
    // The remote oid of an existing regular file is its git blob sha1.
    assert_eq!(
        files[4]["oid"],
        emulators::util::git_blob_sha1(emulators::hub::state::DEFAULT_GITATTRIBUTES.as_bytes())
    );
    assert_eq!(files[0]["oid"], Value::Null);
    assert_eq!(files[0]["shouldIgnore"], false);

    let reply = call("POST", &format!("{}/alice/m.git/info/lfs/objects/batch", emu.url))
        .token(WRITE)
        .body("application/vnd.git-lfs+json", json!({"operation": "upload", "transfers": ["basic", "multipart", "xet"],
            "objects": [{"oid": "ab".repeat(32), "size": 9}], "hash_algo": "sha256", "ref": {"name": "main"}}).to_string())
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["transfer"], "xet");

    let reply = call(
        "GET",
        &format!("{}/api/models/alice/m/xet-write-token/main", emu.url),
    )
    .token(WRITE)
    .send();
    assert_eq!(reply.status, 200);
    let body = reply.json();
    // Each repo has a CAS folder of its own: Xet objects belong to one repo.
    let cas = format!("local://{}", cas_dir(&emu, "alice/m").display());
    assert_eq!(body["casUrl"], cas.as_str());
    assert_eq!(reply.header("x-xet-cas-url"), Some(cas.as_str()));
    assert_eq!(
        reply.header("x-xet-access-token"),
        body["accessToken"].as_str()
    );
    assert!(body["exp"].as_u64().is_some());
    // The read token accepts a tag, a branch or a commit sha; the write token only a branch.
    let reply = call(
        "GET",
        &format!("{}/api/models/alice/m/xet-read-token/{initial}", emu.url),
    )
    .token(READ)
    .send();
    assert_eq!(reply.status, 200);
    let reply = call(
        "GET",
        &format!("{}/api/models/alice/m/xet-write-token/{initial}", emu.url),
    )
    .token(WRITE)
    .send();
    assert_eq!(reply.status, 400);
    let reply = call(
        "GET",
        &format!("{}/api/models/alice/m/xet-write-token/main", emu.url),
    )
    .token(READ)
    .send();
    assert_eq!(reply.status, 403);
}

#[test]
fn lfs_files_need_an_uploaded_shard_and_resolve_like_the_hub() {
    let (_dir, emu) = hub();
    let initial = create_repo(&emu, "m");
    let content = b"pretend these are weights".repeat(100);
    let sha = sha256_hex(&content);
    let size = content.len() as u64;
    let lfs = json!({"key": "lfsFile", "value": {"path": "model.safetensors", "algo": "sha256", "oid": sha, "size": size}});
    let reply = commit(&emu, "alice/m", Some(&initial), std::slice::from_ref(&lfs));
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains(emulators::hub::LFS_POINTER_MISSING));
    assert!(reply.text().contains(&sha));
    assert!(reply.text().contains("model.safetensors"));

    // A shard that only the client's cache holds proves nothing.
    let xet_hash = "0123456789abcdef".repeat(4);
    let cas = cas_dir(&emu, "alice/m");
    let cache = cas.join("xet/shard-cache");
    std::fs::create_dir_all(&cache).expect("mkdir");
    std::fs::write(
        cache.join("x.mdb"),
        shard_bytes(&xet_hash, &sha, size as u32),
    )
    .expect("shard");
    assert_eq!(
        commit(&emu, "alice/m", Some(&initial), std::slice::from_ref(&lfs)).status,
        400
    );

    let shards = cas.join("xet/xorbs/shards");
    std::fs::create_dir_all(&shards).expect("mkdir");
    std::fs::write(
        shards.join("wrong-size.mdb"),
        shard_bytes(&xet_hash, &sha, 3),
    )
    .expect("shard");
    let reply = commit(&emu, "alice/m", Some(&initial), std::slice::from_ref(&lfs));
    assert_eq!(
        reply.status,
        422,
        "a size mismatch was accepted: {}",
        reply.text()
    );
    std::fs::write(
        shards.join("wrong-size.mdb"),
        shard_bytes(&xet_hash, &sha, size as u32),
    )
    .expect("shard");
    let reply = commit(&emu, "alice/m", Some(&initial), std::slice::from_ref(&lfs));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let commit_id = reply.json()["commitOid"].as_str().expect("oid").to_owned();

    let tree = call(
        "GET",
        &format!(
            "{}/api/models/alice/m/tree/main?recursive=true&expand=true",
            emu.url
        ),
    )
    .send()
    .json();
    let entry = tree
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["path"] == "model.safetensors")
        .expect("entry")
        .clone();
    assert_eq!(entry["lfs"]["oid"], sha.as_str());
    assert_eq!(entry["lfs"]["size"], size);
    assert_eq!(entry["xetHash"], xet_hash.as_str());
    assert_eq!(entry["lastCommit"]["id"], commit_id.as_str());
    let pointer = emulators::hub::state::lfs_pointer(&sha, size);
    assert_eq!(
        entry["oid"],
        emulators::util::git_blob_sha1(pointer.as_bytes())
    );

    let reply = call(
        "HEAD",
        &format!("{}/alice/m/resolve/main/model.safetensors", emu.url),
    )
    .send();
    assert_eq!(reply.status, 302);
    let location = reply.header("location").expect("location");
    assert!(
        location.starts_with(&emu.second),
        "CDN not on the second origin: {location}"
    );
    assert!(!location.starts_with(&emu.url));
    assert_eq!(reply.header("x-repo-commit"), Some(commit_id.as_str()));
    assert_eq!(
        reply.header("x-linked-etag"),
        Some(format!("\"{sha}\"").as_str())
    );
    assert_eq!(
        reply.header("x-linked-size"),
        Some(size.to_string().as_str())
    );
    assert_eq!(reply.header("x-xet-hash"), Some(xet_hash.as_str()));
    let link = reply.header("link").expect("link");
    assert_eq!(
        link,
        format!(
            "<{}/api/models/alice/m/xet-read-token/{commit_id}>; rel=\"xet-auth\"",
            emu.url
        )
    );
    // The CDN has no bytes for a Xet file: a storage-style 404, not the file.
    let reply = call("GET", location).send();
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains("NoSuchKey"));
}

#[test]
fn stale_parent_is_refused_with_412_or_the_configured_409() {
    for (config, status) in [(json!({}), 412), (json!({"stale_parent_status": 409}), 409)] {
        let (_dir, emu) = hub_with(&config);
        let initial = create_repo(&emu, "m");
        let first = commit(&emu, "alice/m", Some(&initial), &[inline("a.txt", b"1\n")]);
        assert_eq!(first.status, 200);
        let second = commit(&emu, "alice/m", Some(&initial), &[inline("a.txt", b"2\n")]);
        assert_eq!(second.status, status, "{}", second.text());
        assert!(second.text().contains("A commit has happened since"));
        assert_eq!(
            head(&emu, "alice/m"),
            first.json()["commitOid"].as_str().expect("oid")
        );
        // Without parentCommit the commit lands on the head.
        assert_eq!(
            commit(&emu, "alice/m", None, &[inline("a.txt", b"3\n")]).status,
            200
        );
    }
}

#[test]
fn repo_tag_and_branch_conflicts() {
    let (_dir, emu) = hub();
    let initial = create_repo(&emu, "m");
    let again = call("POST", &format!("{}/api/repos/create", emu.url))
        .token(WRITE)
        .json(&json!({"name": "m", "organization": "alice"}))
        .send();
    assert_eq!(again.status, 409);
    let tag = |name: &str| {
        call("POST", &format!("{}/api/models/alice/m/tag/main", emu.url))
            .token(WRITE)
            .json(&json!({"tag": name, "message": "release"}))
            .send()
    };
    assert_eq!(tag("v1.0.0").status, 200);
    assert_eq!(tag("v1.0.0").status, 409);
    assert_eq!(tag("bad tag").status, 400);
    let branch = call("POST", &format!("{}/api/models/alice/m/branch/rc", emu.url))
        .token(WRITE)
        .json(&json!({"startingPoint": "v1.0.0"}))
        .send();
    assert_eq!(branch.status, 200, "{}", branch.text());
    let refs = call("GET", &format!("{}/api/models/alice/m/refs", emu.url))
        .send()
        .json();
    assert_eq!(
        refs["tags"],
        json!([{"name": "v1.0.0", "ref": "refs/tags/v1.0.0", "targetCommit": initial}])
    );
    assert_eq!(refs["branches"].as_array().map(Vec::len), Some(2));
    let again = call("POST", &format!("{}/api/models/alice/m/branch/rc", emu.url))
        .token(WRITE)
        .send();
    assert_eq!(again.status, 409);
    let del = call(
        "DELETE",
        &format!("{}/api/models/alice/m/tag/v1.0.0", emu.url),
    )
    .token(WRITE)
    .send();
    assert_eq!(del.status, 200);
    let del = call(
        "DELETE",
        &format!("{}/api/models/alice/m/tag/v1.0.0", emu.url),
    )
    .token(WRITE)
    .send();
    assert_eq!(del.status, 404);
    let del = call(
        "DELETE",
        &format!("{}/api/models/alice/m/branch/rc", emu.url),
    )
    .token(WRITE)
    .send();
    assert_eq!(del.status, 200);
    // A commit to a tag or a commit sha is refused: commits go to branches.
    let reply = call(
        "POST",
        &format!("{}/api/models/alice/m/commit/{initial}", emu.url),
    )
    .token(WRITE)
    .body(
        "application/x-ndjson",
        ndjson(&[json!({"key": "header", "value": {"summary": "x"}})]),
    )
    .send();
    assert_eq!(reply.status, 400);
    let reply = call("DELETE", &format!("{}/api/repos/delete", emu.url))
        .token(WRITE)
        .json(&json!({"name": "m", "organization": "alice"}))
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        call("GET", &format!("{}/api/models/alice/m", emu.url))
            .send()
            .status,
        404
    );
}

/// A Space is created only with an SDK, as on the Hub; its pages live under `spaces/`.
#[test]
fn a_space_needs_an_sdk() {
    let (_dir, emu) = hub();
    let create = |body: Value| {
        call("POST", &format!("{}/api/repos/create", emu.url))
            .token(WRITE)
            .json(&body)
            .send()
    };
    let none = create(json!({"name": "demo", "organization": "alice", "type": "space"}));
    assert_eq!(none.status, 400, "{}", none.text());
    assert!(none.text().contains("sdk"), "{}", none.text());
    let unknown =
        create(json!({"name": "demo", "organization": "alice", "type": "space", "sdk": "php"}));
    assert_eq!(unknown.status, 400, "{}", unknown.text());
    let made =
        create(json!({"name": "demo", "organization": "alice", "type": "space", "sdk": "static"}));
    assert_eq!(made.status, 200, "{}", made.text());
    assert!(
        made.json()["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/spaces/alice/demo")),
        "{}",
        made.text()
    );
    let info = call("GET", &format!("{}/api/spaces/alice/demo", emu.url)).send();
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!(info.json()["id"], "alice/demo");
    // A model of the same name is another repo.
    let model = call("GET", &format!("{}/api/models/alice/demo", emu.url)).send();
    assert_eq!(model.status, 404, "{}", model.text());
}

#[test]
fn tokens_and_scopes() {
    let (_dir, emu) = hub();
    let create = |token: Option<&str>, org: &str| {
        let mut c = call("POST", &format!("{}/api/repos/create", emu.url));
        if let Some(t) = token {
            c = c.token(t);
        }
        c.json(&json!({"name": "m", "organization": org}))
            .send()
            .status
    };
    assert_eq!(create(None, "alice"), 401);
    assert_eq!(create(Some("hf_nobody"), "alice"), 401);
    assert_eq!(create(Some(READ), "alice"), 403);
    assert_eq!(create(Some(WRITE), "someone-else"), 403);
    assert_eq!(create(Some(WRITE), "alice"), 200);
    assert_eq!(
        call("GET", &format!("{}/api/whoami-v2", emu.url))
            .send()
            .status,
        401
    );
    let me = call("GET", &format!("{}/api/whoami-v2", emu.url))
        .token(READ)
        .send();
    assert_eq!(me.json()["auth"]["accessToken"]["role"], "read");
    let reply = call(
        "POST",
        &format!("{}/api/models/alice/m/commit/main", emu.url),
    )
    .token(READ)
    .body(
        "application/x-ndjson",
        ndjson(&[json!({"key": "header", "value": {"summary": "x"}})]),
    )
    .send();
    assert_eq!(reply.status, 403);
    // Private repos: 401 anonymously (RepoNotFound), readable by the owner.
    let reply = call("POST", &format!("{}/api/repos/create", emu.url))
        .token(WRITE)
        .json(&json!({"name": "secret", "organization": "alice", "private": true}))
        .send();
    assert_eq!(reply.status, 200);
    let anon = call("GET", &format!("{}/api/models/alice/secret", emu.url)).send();
    assert_eq!(anon.status, 401);
    assert_eq!(anon.header("x-error-code"), Some("RepoNotFound"));
    assert_eq!(
        call("GET", &format!("{}/api/models/alice/secret", emu.url))
            .token(READ)
            .send()
            .status,
        200
    );
    // The token value never reaches the request log.
    let log = std::fs::read_to_string(emu.data.join("requests.jsonl")).expect("log");
    assert!(!log.contains(WRITE) && !log.contains(READ) && !log.contains("hf_nobody"));
    assert!(emu.requests().iter().any(|r| r["auth"] == true));
}

#[test]
fn state_survives_a_restart() {
    let (_dir, emu) = hub();
    let initial = create_repo(&emu, "m");
    let reply = commit(
        &emu,
        "alice/m",
        Some(&initial),
        &[inline("a.txt", b"kept\n")],
    );
    let oid = reply.json()["commitOid"].as_str().expect("oid").to_owned();
    let tag = call("POST", &format!("{}/api/models/alice/m/tag/{oid}", emu.url))
        .token(WRITE)
        .json(&json!({"tag": "v1"}))
        .send();
    assert_eq!(tag.status, 200);
    let old_url = emu.url.clone();
    let emu = emu.restart();
    assert_ne!(emu.url, old_url, "port 0 should give a new port");
    let refs = call("GET", &format!("{}/api/models/alice/m/refs", emu.url))
        .send()
        .json();
    assert_eq!(refs["tags"][0]["targetCommit"], oid.as_str());
    assert_eq!(refs["branches"][0]["targetCommit"], oid.as_str());
    let file = call("GET", &format!("{}/alice/m/resolve/v1/a.txt", emu.url)).send();
    assert_eq!(file.body, b"kept\n");
    // Tokens from the first start's seed are still accepted.
    assert_eq!(
        call("GET", &format!("{}/api/whoami-v2", emu.url))
            .token(WRITE)
            .send()
            .status,
        200
    );
    // New commit ids stay unique after the restart.
    let next = commit(&emu, "alice/m", Some(&oid), &[inline("b.txt", b"x\n")]);
    assert_eq!(next.status, 200);
    assert_ne!(next.json()["commitOid"], oid.as_str());
}

#[test]
fn status_fault_with_retry_after_fires_the_configured_number_of_times() {
    let (_dir, emu) = hub();
    create_repo(&emu, "m");
    emu.faults(
        &json!({"faults": [{"method": "GET", "path": "/api/models/*/*/refs", "action": "status",
        "status": 429, "retry_after": "7", "message": "rate limited", "times": 2}]}),
    );
    let url = format!("{}/api/models/alice/m/refs", emu.url);
    for _ in 0..2 {
        let reply = call("GET", &url).send();
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("7"));
        assert_eq!(reply.header("x-error-message"), Some("rate limited"));
    }
    assert_eq!(call("GET", &url).send().status, 200);
    // Other methods and paths never matched.
    assert_eq!(
        call("GET", &format!("{}/api/models/alice/m", emu.url))
            .send()
            .status,
        200
    );
    let left = std::fs::read_to_string(emu.data.join("faults.json")).expect("faults");
    assert_eq!(
        serde_json::from_str::<Value>(&left).expect("json")["faults"],
        json!([])
    );
    let statuses: Vec<Value> = emu
        .requests()
        .iter()
        .filter(|r| r["path"] == "/api/models/alice/m/refs")
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(429), json!(429), json!(200)]);
    // The admin route sets faults too.
    let reply = call("POST", &format!("{}/_emulator/faults", emu.url))
        .json(&json!({"faults": [{"path": "/api/**", "action": "status", "status": 503}]}))
        .send();
    assert_eq!(reply.status, 200);
    assert_eq!(call("GET", &url).send().status, 503);
    assert_eq!(
        call("DELETE", &format!("{}/_emulator/faults", emu.url))
            .send()
            .status,
        200
    );
    assert_eq!(call("GET", &url).send().status, 200);
}

#[test]
fn dropped_connection_does_nothing_and_lost_response_applies_the_write() {
    let (_dir, emu) = hub();
    let initial = create_repo(&emu, "m");
    emu.faults(&json!({"faults": [{"method": "POST", "path": "/api/models/alice/m/commit/main", "action": "drop", "times": 1}]}));
    let body = ndjson(&[
        json!({"key": "header", "value": {"summary": "s", "parentCommit": initial}}),
        inline("a.txt", b"a\n"),
    ]);
    let post = || {
        call(
            "POST",
            &format!("{}/api/models/alice/m/commit/main", emu.url),
        )
        .token(WRITE)
        .body("application/x-ndjson", body.clone())
        .try_send()
    };
    assert!(post().is_err(), "a dropped connection produced a response");
    assert_eq!(
        head(&emu, "alice/m"),
        initial,
        "a dropped request was applied"
    );

    emu.faults(&json!({"faults": [{"method": "POST", "path": "/api/models/alice/m/commit/main", "action": "lose_response", "times": 1}]}));
    assert!(post().is_err(), "a lost response arrived");
    let landed = head(&emu, "alice/m");
    assert_ne!(
        landed, initial,
        "the write behind a lost response did not land"
    );
    // A blind retry with the same parent is now stale.
    assert_eq!(post().expect("answer").status, 412);
    let log = emu.requests();
    let commits: Vec<&Value> = log
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/api/models/alice/m/commit/main")
        .collect();
    assert_eq!(commits.len(), 3);
    assert_eq!(commits[0]["fault"], "drop");
    assert_eq!(commits[0]["status"], Value::Null);
    assert_eq!(commits[1]["fault"], "lose_response");
    assert_eq!(commits[2]["status"], 412);
}

#[test]
fn delay_fault_slows_the_answer() {
    let (_dir, emu) = hub();
    emu.faults(&json!({"faults": [{"path": "/api/whoami-v2", "action": "delay", "delay_ms": 400, "times": 1}]}));
    let start = Instant::now();
    let reply = call("GET", &format!("{}/api/whoami-v2", emu.url))
        .token(WRITE)
        .send();
    assert_eq!(reply.status, 200);
    assert!(start.elapsed().as_millis() >= 400, "no delay");
}

/// The hostile servers of tinydit-release's tests: one that echoes the `Authorization` header,
/// one that never answers, one that drips, one that floods, one that lies in its headers.
#[test]
fn hostile_faults_echo_hang_drip_flood_and_set_headers() {
    let (_dir, emu) = hub();
    let whoami = format!("{}/api/whoami-v2", emu.url);
    emu.faults(
        &json!({"faults": [{"path": "/api/whoami-v2", "action": "echo_token", "times": 1}]}),
    );
    let reply = call("GET", &whoami).token(WRITE).send();
    assert_eq!(reply.status, 401);
    let quoted = format!("you sent `Authorization: Bearer {WRITE}`");
    assert!(
        reply.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains(&quoted))
    );
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|e| e.contains(&quoted))
    );
    assert!(
        reply
            .header("x-error-message")
            .is_some_and(|e| e.contains(&quoted))
    );

    emu.faults(&json!({"faults": [{"path": "/api/whoami-v2", "action": "hang", "times": 1}]}));
    let mut stream =
        std::net::TcpStream::connect(emu.url.trim_start_matches("http://")).expect("connect");
    std::io::Write::write_all(
        &mut stream,
        b"GET /api/whoami-v2 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .expect("send");
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(800)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    let read = std::io::Read::read(&mut stream, &mut byte);
    assert!(
        read.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "a hanging server answered: {read:?}"
    );

    let plain = call("GET", &whoami).token(WRITE).send();
    emu.faults(&json!({"faults": [{"path": "/api/whoami-v2", "action": "drip", "interval_ms": 5, "times": 1}]}));
    let start = Instant::now();
    let dripped = call("GET", &whoami).token(WRITE).send();
    assert_eq!(dripped.status, 200);
    assert_eq!(dripped.body, plain.body, "the same answer, slowly");
    assert!(start.elapsed().as_millis() >= 5 * (plain.body.len() as u128 - 1));

    emu.faults(&json!({"faults": [{"path": "/api/whoami-v2", "action": "huge_body", "bytes": 3_000_000, "times": 1}]}));
    let flood = call("GET", &whoami).token(WRITE).send();
    assert_eq!(flood.status, 200);
    assert_eq!(flood.body.len(), 3_000_000);
    assert_eq!(
        flood.header("content-length"),
        None,
        "the size is not declared"
    );

    emu.faults(&json!({"faults": [{"path": "/api/whoami-v2", "action": "headers", "times": 1,
        "headers": {"X-Linked-Size": "1099511627776", "Link": "<http://elsewhere/x>; rel=\"next\""}}]}));
    let lying = call("GET", &whoami).token(WRITE).send();
    assert_eq!(lying.status, 200);
    assert_eq!(lying.header("x-linked-size"), Some("1099511627776"));
    assert_eq!(
        lying.header("link"),
        Some("<http://elsewhere/x>; rel=\"next\"")
    );
    assert_eq!(lying.body, plain.body);
    let faults: Vec<Value> = emu.requests().iter().map(|r| r["fault"].clone()).collect();
    for action in ["echo_token", "hang", "drip", "huge_body", "headers"] {
        assert!(faults.contains(&json!(action)), "{action} logged");
    }
}

#[test]
fn broken_faults_file_fails_loudly() {
    let (_dir, emu) = hub();
    std::fs::write(emu.data.join("faults.json"), "{not json").expect("write");
    let reply = call("GET", &format!("{}/api/whoami-v2", emu.url))
        .token(WRITE)
        .send();
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("faults.json"), "{}", reply.text());
}

#[test]
fn tree_and_commits_paginate_with_link_headers() {
    let (_dir, emu) = hub();
    let mut parent = create_repo(&emu, "m");
    let ops: Vec<Value> = (0..60)
        .map(|i| inline(&format!("f/{i:02}.txt"), format!("{i}\n").as_bytes()))
        .collect();
    let reply = commit(&emu, "alice/m", Some(&parent), &ops);
    parent = reply.json()["commitOid"].as_str().expect("oid").to_owned();
    let mut url = format!("{}/api/models/alice/m/tree/main/f?expand=true", emu.url);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let reply = call("GET", &url).send();
        assert_eq!(reply.status, 200);
        seen.extend(
            reply
                .json()
                .as_array()
                .expect("list")
                .iter()
                .map(|e| e["path"].as_str().unwrap_or("").to_owned()),
        );
        let Some(link) = reply.header("link") else {
            break;
        };
        url = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .expect("url")
            .to_owned();
    }
    assert_eq!(seen.len(), 60, "{seen:?}");
    assert_eq!(seen[59], "f/59.txt");
    for i in 0..55 {
        let reply = commit(
            &emu,
            "alice/m",
            Some(&parent),
            &[inline("n.txt", format!("{i}\n").as_bytes())],
        );
        parent = reply.json()["commitOid"].as_str().expect("oid").to_owned();
    }
    let first = call(
        "GET",
        &format!("{}/api/models/alice/m/commits/main", emu.url),
    )
    .send();
    assert_eq!(first.json().as_array().map(Vec::len), Some(50));
    let link = first.header("link").expect("next page");
    let next = link.trim_start_matches('<').split('>').next().expect("url");
    let rest = call("GET", next).send().json();
    assert_eq!(rest.as_array().map(Vec::len), Some(7), "57 commits in all");
}

fn lfs_line(path: &str, sha: &str, size: u64) -> Value {
    json!({"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": sha, "size": size}})
}

/// Puts a shard naming `sha` (`size` bytes) into `repo`'s CAS folder, as an Xet upload for it
/// would.
fn upload_shard(emu: &Emulator, repo: &str, name: &str, sha: &str, size: u64) {
    let shards = cas_dir(emu, repo).join("xet/xorbs/shards");
    std::fs::create_dir_all(&shards).expect("mkdir");
    std::fs::write(
        shards.join(format!("{name}.mdb")),
        shard_bytes(&"ab".repeat(32), sha, size as u32),
    )
    .expect("shard");
}

#[test]
fn xet_objects_belong_to_one_repo_and_go_with_it() {
    let (_dir, emu) = hub();
    let m = create_repo(&emu, "m");
    let n = create_repo(&emu, "n");
    assert_ne!(cas_dir(&emu, "alice/m"), cas_dir(&emu, "alice/n"));
    let sha = sha256_hex(b"weights");
    upload_shard(&emu, "alice/m", "one", &sha, 7);
    let line = lfs_line("model.safetensors", &sha, 7);
    let reply = commit(&emu, "alice/m", Some(&m), std::slice::from_ref(&line));
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Another repo does not have those bytes, though the emulator does.
    let reply = commit(&emu, "alice/n", Some(&n), std::slice::from_ref(&line));
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains(emulators::hub::LFS_POINTER_MISSING));

    // Deleted and created again, the repo starts without them.
    let old = cas_dir(&emu, "alice/m");
    let reply = call("DELETE", &format!("{}/api/repos/delete", emu.url))
        .token(WRITE)
        .json(&json!({"name": "m", "organization": "alice"}))
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(!old.exists(), "the old repo's objects are gone");
    let m = create_repo(&emu, "m");
    assert_ne!(cas_dir(&emu, "alice/m"), old);
    let reply = commit(&emu, "alice/m", Some(&m), std::slice::from_ref(&line));
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("model.safetensors"));
    upload_shard(&emu, "alice/m", "again", &sha, 7);
    let reply = commit(&emu, "alice/m", Some(&m), std::slice::from_ref(&line));
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn fresh_objects_are_refused_while_they_propagate() {
    for lag in [1u32, 2] {
        let (_dir, emu) = hub_with(&json!({"lfs_propagation_lag": lag}));
        let initial = create_repo(&emu, "m");
        let sha = sha256_hex(b"weights");
        upload_shard(&emu, "alice/m", "one", &sha, 7);
        let line = lfs_line("model.safetensors", &sha, 7);
        for _ in 0..lag {
            let reply = commit(&emu, "alice/m", Some(&initial), std::slice::from_ref(&line));
            assert_eq!(reply.status, 400, "lag {lag}: {}", reply.text());
            assert!(reply.text().contains(emulators::hub::LFS_POINTER_MISSING));
        }
        let reply = commit(&emu, "alice/m", Some(&initial), std::slice::from_ref(&line));
        assert_eq!(reply.status, 200, "lag {lag}: {}", reply.text());
        // Once seen, it stays seen.
        let head = reply.json()["commitOid"].as_str().expect("oid").to_owned();
        let reply = commit(
            &emu,
            "alice/m",
            Some(&head),
            &[lfs_line("copy.safetensors", &sha, 7)],
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
}

#[test]
fn rate_limits_answer_429_with_ratelimit_headers_and_no_retry_after() {
    let (_dir, emu) = hub_with(&json!({"rate_limit": {"limit": 4, "window_s": 2}}));
    let whoami = || {
        call("GET", &format!("{}/api/whoami-v2", emu.url))
            .token(WRITE)
            .send()
    };
    // Every answer carries the IETF draft headers.
    let first = whoami();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit"), Some("\"api\";r=3;t=2"));
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"fixed window\";\"api\";q=4;w=2")
    );
    for _ in 0..3 {
        assert_eq!(whoami().status, 200);
    }
    // The quota is spent: 429, `r=0`, the time to the reset, and no `Retry-After`.
    let limited = whoami();
    assert_eq!(limited.status, 429, "{}", limited.text());
    let header = limited.header("ratelimit").expect("ratelimit");
    assert!(header.starts_with("\"api\";r=0;t="), "{header}");
    assert!(limited.header("retry-after").is_none());
    assert!(limited.text().contains("We had to rate limit you"));
    let log = emu.requests();
    assert_eq!(log.last().expect("logged")["fault"], "rate_limit");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(whoami().status, 200, "a new window");

    // A `rate_limit` fault spends the quota for `reset_s`: every request until then is refused.
    emu.faults(&json!({"faults": [
        {"method": "GET", "path": "/api/models/*/*/refs", "action": "rate_limit", "reset_s": 1, "times": 1}
    ]}));
    let refs = call("GET", &format!("{}/api/models/alice/none/refs", emu.url))
        .token(WRITE)
        .send();
    assert_eq!(refs.status, 429);
    assert_eq!(refs.header("ratelimit"), Some("\"api\";r=0;t=1"));
    assert_eq!(whoami().status, 429, "the whole bucket is spent");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(whoami().status, 200);
}
