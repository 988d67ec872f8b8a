//! `verify` (issue 18) against the emulators: a release made by `publish` verifies without a
//! token, from the Hub (compared with the GitHub release) and as a downloaded folder; a Hub file
//! changed after the release, a moved tag and a tampered GitHub asset are each named, exit 1.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{GH_REPO, GH_TOKEN, HF_TOKEN, Outcome, REPO, World, fixture_world};

const TARGET: &str = "alice/tinydit@v1.2.0";

impl World {
    /// `verify ARGS` with no token at all (public repositories).
    fn verify(&self, args: &[&str]) -> Outcome {
        let mut all = vec!["verify"];
        all.extend_from_slice(args);
        self.run_with(&all, false)
    }

    /// A second Hub commit on `main`: `files` (path, content) added or replaced.
    fn hub_commit(&self, files: &[(&str, &[u8])]) {
        let mut lines =
            vec![json!({"key": "header", "value": {"summary": "changed after release"}})];
        for (path, bytes) in files {
            lines.push(json!({"key": "file", "value": {
                "path": path,
                "content": base64::engine::general_purpose::STANDARD.encode(bytes),
                "encoding": "base64",
            }}));
        }
        let body: String = lines.iter().map(|l| l.to_string() + "\n").collect();
        let response = ureq::post(format!("{}/api/models/{REPO}/commit/main", self.hub.url))
            .config()
            .http_status_as_error(false)
            .build()
            .header("Authorization", format!("Bearer {HF_TOKEN}"))
            .header("Content-Type", "application/x-ndjson")
            .send(body.as_bytes())
            .expect("commit");
        assert_eq!(response.status(), 200, "second Hub commit");
    }

    /// Moves the Hub tag to the head of `main`.
    fn move_hub_tag(&self, tag: &str) {
        let agent = |method: &str, url: String| {
            http_request(method, &url)
                .header("Authorization", format!("Bearer {HF_TOKEN}"))
                .header("Content-Type", "application/json")
        };
        let deleted = agent(
            "DELETE",
            format!("{}/api/models/{REPO}/tag/{tag}", self.hub.url),
        )
        .body(Vec::new())
        .expect("request");
        assert!(send(deleted) < 300, "tag deleted");
        let created = agent(
            "POST",
            format!("{}/api/models/{REPO}/tag/main", self.hub.url),
        )
        .body(json!({ "tag": tag }).to_string().into_bytes())
        .expect("request");
        assert!(send(created) < 300, "tag created");
    }

    /// The published GitHub release's assets.
    fn github_assets(&self) -> Vec<Value> {
        let releases = self.releases();
        releases[0]["assets"].as_array().expect("assets").clone()
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn http_request(method: &str, url: &str) -> ureq::http::request::Builder {
    ureq::http::Request::builder().method(method).uri(url)
}

fn send(request: ureq::http::Request<Vec<u8>>) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent.run(request).expect("send").status().as_u16()
}

#[test]
fn a_published_release_verifies_and_a_hub_file_changed_after_it_is_named() {
    let (world, ort) = fixture_world();
    world.publish_from_scratch(&ort).status(0);

    // Without a token, from the Hub, compared with GitHub: every file and asset agrees.
    world
        .verify(&[TARGET, "--github-repo", GH_REPO])
        .status(0)
        .stderr_has("Verified");
    // The bundle `check` wrote, and its `--out` folder with manifest.json.
    world.verify(&["fx/dist"]).status(0);
    world.verify(&["fx/dist/bundle"]).status(0);
    // A copy of the bundle as someone downloaded it (`hf download` adds `.gitattributes` and
    // `.cache/huggingface/`, which are no part of the release).
    let bundle = world.ctx.path().join("fx/dist/bundle");
    let copy = world.ctx.path().join("downloaded");
    copy_dir(&bundle, &copy);
    std::fs::write(copy.join(".gitattributes"), b"*.onnx filter=lfs\n").expect("write");
    std::fs::create_dir_all(copy.join(".cache/huggingface")).expect("mkdir");
    std::fs::write(copy.join(".cache/huggingface/x.metadata"), b"x").expect("write");
    world.verify(&["downloaded"]).status(0);
    let requests_before = world.hub.requests().len();
    world.verify(&[TARGET]).status(0);
    let large_reads = world.hub.requests()[requests_before..]
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.contains("tinydit.safetensors") && !p.contains("/tree/"))
        })
        .count();
    assert_eq!(
        large_reads, 0,
        "the LFS file is verified from the listing, not downloaded"
    );

    // A second Hub commit changes the card and adds a file: the tag still holds the release, the
    // branch users download from does not.
    world.hub_commit(&[
        ("README.md", b"# replaced after the release\n"),
        ("notes.txt", b"not released\n"),
    ]);
    world.verify(&[TARGET, "--github-repo", GH_REPO]).status(0);
    let changed = world.verify(&[TARGET, "--revision", "main"]);
    changed
        .status(1)
        .stderr_has("different: `README.md` on the Hub at `main` has sha256")
        .stderr_has("extra: `notes.txt` is on the Hub at `main` but not in SHA256SUMS");
    assert!(
        !changed.stderr.contains("tinydit.safetensors"),
        "{}",
        changed.stderr
    );

    // SHA256SUMS rewritten on main to match: main no longer holds the release's SHA256SUMS.
    let sums_text =
        std::fs::read_to_string(world.ctx.path().join("fx/dist/bundle/SHA256SUMS")).expect("sums");
    let sha = |bytes: &[u8]| {
        use sha2::Digest as _;
        tinydit_release::digest::hex(&sha2::Sha256::digest(bytes))
    };
    let readme_sha = sha(b"# replaced after the release\n");
    let rewritten: String = sums_text
        .lines()
        .map(|l| {
            if l.ends_with("  README.md") {
                format!("{readme_sha}  README.md\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect::<String>()
        + &format!("{}  notes.txt\n", sha(b"not released\n"));
    world.hub_commit(&[("SHA256SUMS", rewritten.as_bytes())]);
    world
        .verify(&[TARGET, "--revision", "main"])
        .status(1)
        .stderr_has("different: `SHA256SUMS` on the Hub at `main` is not the one of `v1.2.0`");

    // The tag moved to that commit: the Hub alone is consistent again; only the second
    // registry can tell, and does.
    world.move_hub_tag("v1.2.0");
    world
        .verify(&[TARGET, "--github-repo", GH_REPO])
        .status(1)
        .stderr_has("different: `README.md`: the GitHub release's SHA256SUMS says")
        .stderr_has(
            "missing: `notes.txt` is in the Hub's SHA256SUMS but not in the GitHub release's",
        );

    // A downloaded folder with a changed, a missing and an extra file.
    let dl = world.ctx.path().join("downloaded");
    std::fs::write(dl.join("metrics.json"), b"{}").expect("write");
    std::fs::remove_file(dl.join("release.json")).expect("remove");
    std::fs::write(dl.join("extra.bin"), b"x").expect("write");
    world
        .verify(&["downloaded"])
        .status(1)
        .stderr_has("different: `metrics.json` has sha256")
        .stderr_has("missing: `release.json` is listed in SHA256SUMS but not in the folder")
        .stderr_has("extra: `extra.bin` is in the folder but not in SHA256SUMS");
}

#[test]
fn a_tampered_github_asset_is_named() {
    let (world, ort) = fixture_world();
    world.publish_from_scratch(&ort).status(0);
    world.verify(&[TARGET, "--github-repo", GH_REPO]).status(0);

    // The stored bytes of GitHub's SHA256SUMS change under its listed digest.
    let assets = world.github_assets();
    let sums = assets
        .iter()
        .find(|a| a["name"] == "SHA256SUMS")
        .expect("SHA256SUMS attached");
    let stored = world
        .github
        .data
        .join("assets")
        .join(sums["id"].as_u64().expect("id").to_string());
    let text = std::fs::read_to_string(&stored).expect("stored asset");
    let tampered = text.replacen(&text[..64], &"0".repeat(64), 1);
    std::fs::write(&stored, &tampered).expect("tamper");
    let first = text
        .lines()
        .next()
        .expect("line")
        .split_once("  ")
        .expect("line")
        .1;
    world
        .verify(&[TARGET, "--github-repo", GH_REPO])
        .status(1)
        .stderr_has("different: the GitHub asset `SHA256SUMS` is not the file GitHub lists")
        .stderr_has(&format!(
            "different: `{first}`: the GitHub release's SHA256SUMS says {}",
            "0".repeat(64)
        ));
    std::fs::write(&stored, &text).expect("restore");

    // The weights asset replaced by other bytes (deleted and uploaded again).
    let weights = assets
        .iter()
        .find(|a| a["name"] == "tinydit.safetensors")
        .expect("weights attached");
    let delete = http_request(
        "DELETE",
        &format!(
            "{}/repos/{GH_REPO}/releases/assets/{}",
            world.github.url,
            weights["id"].as_u64().expect("id")
        ),
    )
    .header("Authorization", format!("Bearer {GH_TOKEN}"))
    .body(Vec::new())
    .expect("request");
    assert!(send(delete) < 300, "asset deleted");
    let release_id = world.releases()[0]["id"].as_u64().expect("release id");
    let upload = http_request(
        "POST",
        &format!(
            "{}/repos/{GH_REPO}/releases/{release_id}/assets?name=tinydit.safetensors",
            world.github.second
        ),
    )
    .header("Authorization", format!("Bearer {GH_TOKEN}"))
    .header("Content-Type", "application/octet-stream")
    .body(b"not the released weights".to_vec())
    .expect("request");
    assert!(send(upload) < 300, "asset uploaded");
    world
        .verify(&[TARGET, "--github-repo", GH_REPO])
        .status(1)
        .stderr_has("different: the GitHub asset `tinydit.safetensors` has sha256");
    // The Hub alone still holds the release.
    world.verify(&[TARGET]).status(0);
}

/// `--download DIR`: every file streamed from the Hub, hashed on the way and kept when it
/// matches; the folder then verifies on its own. (A release of small regular files: the Hub
/// emulator serves Xet-stored files only through Xet, not as plain bytes, see
/// emulators/README.md.)
#[test]
fn download_keeps_the_files_that_match() {
    let world = World::new();
    world.bundle_with("1.0.0", b"weights-v1", false);
    // The hand-made bundle gets its SHA256SUMS as `check` writes it, listed in the manifest.
    let dist = world.ctx.path().join("dist");
    let manifest_path = dist.join("manifest.json");
    let mut manifest: tinydit_release::manifest::ReleaseManifest =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    let sums = tinydit_release::sums::render(
        manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.sha256.as_str())),
    );
    std::fs::write(dist.join("bundle/SHA256SUMS"), &sums).expect("write");
    let (bytes, sha256) =
        tinydit_release::bundle::hash_file(&dist.join("bundle/SHA256SUMS")).expect("hash");
    manifest.files.push(tinydit_release::bundle::BundleFile {
        path: "SHA256SUMS".to_owned(),
        bytes,
        sha256,
    });
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).expect("json"),
    )
    .expect("manifest");
    world.publish("1.0.0").status(0);

    world
        .verify(&[
            "alice/tinydit@v1.0.0",
            "--download",
            "dl",
            "--github-repo",
            GH_REPO,
        ])
        .status(0);
    for file in &manifest.files {
        assert_eq!(
            std::fs::read(world.ctx.path().join("dl").join(&file.path)).expect("downloaded"),
            std::fs::read(dist.join("bundle").join(&file.path)).expect("bundle"),
            "{}",
            file.path
        );
    }
    world.verify(&["dl"]).status(0);

    // Changed on the Hub after the release: named, and not kept.
    world.hub_commit(&[("model.txt", b"textreplaced")]);
    let again = world.ctx.path().join("dl2");
    world
        .verify(&[
            "alice/tinydit@v1.0.0",
            "--revision",
            "main",
            "--download",
            "dl2",
        ])
        .status(1)
        .stderr_has("different: `model.txt` on the Hub at `main` has sha256");
    assert!(
        !again.join("model.txt").exists(),
        "a file that differs is not kept"
    );
    assert!(again.join("README.md").is_file(), "the others are");
}
