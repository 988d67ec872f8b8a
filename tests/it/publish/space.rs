//! The demo Space released with the model: `plan` shows it, `publish` creates the Space (a static
//! one), commits its files to `main` and tags that commit with the version, a re-run writes
//! nothing, and the card links it. Then the page **as published** (the Space's files downloaded
//! from the Hub emulator at the tag) runs in headless Chromium (`tests/browser/space-test.mjs`),
//! loading the model through the Hub's resolve route (CORS) at the tag: one image per class for
//! the Space's seed, compared with `tinydit-release sample` for the same seed and model. The noise
//! must be bit-identical; the final images within 40 dB PSNR (float model).

use super::*;

const SPACE: &str = "alice/tinydit-demo";

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// PSNR in dB of two images in [-1, 1] (peak-to-peak 2), after clipping as the PNGs do.
fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(x.clamp(-1.0, 1.0)) - f64::from(y.clamp(-1.0, 1.0));
            d * d
        })
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (4.0 / mse).log10()
    }
}

#[test]
fn the_space_draws_in_a_browser_what_the_cli_draws() {
    let node_modules = crate::common::repo_root().join("tests/browser/node_modules");
    assert!(
        node_modules.join("playwright-core").is_dir(),
        "`tests/browser/node_modules` is missing: run `make test` (which runs `npm ci` there)"
    );
    let ort = crate::common::require_ort();
    let toml = fixture_release_toml(&format!(
        "\n[space]\nrepo = \"{SPACE}\"\ngenerator = \"full\"\n"
    ));
    let (world, dist) = checked_world(&toml, &ort);
    let publish_args = [
        "publish",
        "--config",
        "fx/release.toml",
        "--bundle",
        "fx/dist",
        "--json",
    ];

    // The plan names the Space and its files; nothing is written.
    let plan = world.run(&[
        "plan",
        "--config",
        "fx/release.toml",
        "--bundle",
        "fx/dist",
        "--json",
    ]);
    plan.status(0);
    let plan = plan.json();
    assert_eq!(plan["space"]["repo"], SPACE);
    assert_eq!(plan["space"]["repo_action"], "create");
    assert_eq!(plan["space"]["revision"], "main");
    assert_eq!(plan["space"]["tag_plan"]["action"], "create");
    let planned: Vec<&str> = plan["space"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    let mut built: Vec<String> = std::fs::read_dir(dist.join("space"))
        .expect("space dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    built.sort();
    assert_eq!(planned, built, "the plan lists every file of the Space");
    assert!(world.hub.writes().is_empty(), "{:?}", world.hub.writes());

    // Published: the Space's `main` holds exactly its files, tagged with the version.
    let first = world.run(&publish_args);
    first.status(0);
    let receipt = first.json();
    assert_eq!(
        receipt["space_url"],
        format!("{}/spaces/{SPACE}", world.hub.url).as_str()
    );
    let refs = world
        .hub
        .get(&format!("/api/spaces/{SPACE}/refs"), super::HF_TOKEN);
    let tag = refs["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .find(|t| t["name"] == "v1.2.0")
        .unwrap_or_else(|| panic!("the Space has no tag v1.2.0: {refs}"));
    assert_eq!(tag["targetCommit"], receipt["space_commit"]);
    assert_eq!(refs["branches"][0]["name"], "main");
    assert_eq!(refs["branches"][0]["targetCommit"], receipt["space_commit"]);
    let from_hub = download_space(&world, &dist, &built);
    let card = std::fs::read_to_string(dist.join("bundle/README.md")).expect("card");
    assert!(
        card.contains(&format!("(https://huggingface.co/spaces/{SPACE})")),
        "the model card links the Space"
    );

    // A re-run finds the model and the Space released and writes nothing.
    let writes = world.hub.writes().len();
    let again = world.run(&publish_args);
    again.status(0);
    assert_eq!(again.json()["already_released"], true);
    assert_eq!(world.hub.writes().len(), writes, "a re-run writes nothing");
    browser_matches_sample(&world, &dist, &from_hub, &ort);
}

/// Adds a Space to the world's bundle (`dist/space/` and its listing in `dist/manifest.json`),
/// as `check` does with `[space]`: text files only, so nothing goes through Xet.
fn add_space(world: &World, version: &str) {
    let dist = world.ctx.path().join("dist");
    let space = dist.join("space");
    std::fs::create_dir_all(&space).expect("mkdir");
    let files = [
        (
            "README.md",
            format!(
                "---\ntitle: TinyDiT\nsdk: static\nmodels:\n- {}\n---\n# Demo {version}\n",
                super::REPO
            ),
        ),
        (
            "index.html",
            "<!doctype html><title>TinyDiT</title>\n".to_owned(),
        ),
        ("space.json", format!("{{\"revision\": \"v{version}\"}}\n")),
    ];
    let mut listed = Vec::new();
    for (path, text) in &files {
        let full = space.join(path);
        std::fs::write(&full, text).expect("write");
        let (bytes, sha256) = tinydit_release::bundle::hash_file(&full).expect("hash");
        listed.push(json!({"path": path, "bytes": bytes, "sha256": sha256}));
    }
    let path = dist.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("json");
    manifest["space"] = json!({"repo": SPACE, "files": listed});
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).expect("json")).expect("write");
}

impl World {
    fn space_refs(&self) -> Value {
        self.hub
            .get(&format!("/api/spaces/{SPACE}/refs"), super::HF_TOKEN)
    }

    fn space_commits(&self) -> usize {
        self.hub
            .get(
                &format!("/api/spaces/{SPACE}/commits/main"),
                super::HF_TOKEN,
            )
            .as_array()
            .map_or(0, Vec::len)
    }
}

/// A failure at any step of the Space's release (its creation, its commit, its tag, answers
/// lost) is finished by a re-run: one Space commit, one tag on it, then nothing left to do.
/// The creation fault comes after the model's release (a Space added to a released version),
/// so that it fails the Space's creation, not the model repo's.
#[test]
fn a_rerun_after_a_failure_in_the_spaces_release_completes_it() {
    let faults = [
        json!({"method": "POST", "path": "/api/repos/create", "action": "status", "status": 503}),
        json!({"method": "POST", "path": "/api/spaces/*/*/commit/*", "action": "drop"}),
        json!({"method": "POST", "path": "/api/spaces/*/*/commit/*", "action": "lose_response"}),
        json!({"method": "POST", "path": "/api/spaces/*/*/tag/*", "action": "status", "status": 500}),
        json!({"method": "POST", "path": "/api/spaces/*/*/tag/*", "action": "lose_response"}),
    ];
    for fault in faults {
        let world = World::new();
        let creation = fault["path"] == "/api/repos/create";
        if creation {
            world.publish("1.0.0").status(0);
        }
        add_space(&world, "1.0.0");
        world.hub.faults(&json!({"faults": [fault]}));
        let failed = world.publish("1.0.0");
        world.hub.faults(&json!({"faults": []}));
        if creation {
            failed
                .status(2)
                .stderr_has("failed to create the repo on the Hub");
            assert_eq!(world.space_refs()["tags"], Value::Null, "no Space yet");
        }
        assert!(
            failed.status == Some(2) || failed.status == Some(0),
            "fault {fault}: {}",
            failed.stderr
        );
        let rerun = world.publish("1.0.0");
        rerun.status(0);
        let receipt = rerun.json();
        // The Space's repo starts with its own initial commit.
        assert_eq!(world.space_commits(), 2, "fault {fault}: one Space commit");
        let refs = world.space_refs();
        assert_eq!(
            refs["tags"].as_array().map(Vec::len),
            Some(1),
            "fault {fault}: one Space tag"
        );
        assert_eq!(refs["tags"][0]["name"], "v1.0.0", "fault {fault}");
        assert_eq!(
            refs["tags"][0]["targetCommit"], receipt["space_commit"],
            "fault {fault}"
        );
        assert_eq!(
            world.hub_commits("main").len(),
            2,
            "fault {fault}: one model commit"
        );
        let again = world.publish("1.0.0");
        again.status(0).stderr_has("already released");
        assert_eq!(again.json()["already_released"], true, "fault {fault}");
    }
}

/// The next version commits only the Space's changed files; a prerelease leaves the Space alone
/// and says so; the same version with another Space is refused, naming the file.
#[test]
fn the_space_follows_final_versions_and_refuses_other_content_for_a_released_tag() {
    let world = World::new();
    add_space(&world, "1.0.0");
    world.publish("1.0.0").status(0);

    world.bundle("1.1.0-rc.1", b"weights-rc");
    add_space(&world, "1.1.0-rc.1");
    let writes = world.hub.writes();
    let rc = world.publish("1.1.0-rc.1");
    rc.status(0).stderr_has(
        "is a prerelease: the Space `alice/tinydit-demo` keeps showing the latest release",
    );
    assert!(
        world.hub.writes()[writes.len()..]
            .iter()
            .all(|w| !w.contains("/spaces/")),
        "a prerelease writes nothing to the Space: {:?}",
        &world.hub.writes()[writes.len()..]
    );
    assert_eq!(world.space_commits(), 2);

    world.bundle("1.1.0", b"weights-v2");
    add_space(&world, "1.1.0");
    let second = world.publish("1.1.0");
    second.status(0);
    let plan = &second.json()["plan"]["space"];
    let actions: Vec<(&str, &str)> = plan["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or(""),
                f["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("README.md", "replace"),
            ("index.html", "unchanged"),
            ("space.json", "replace")
        ]
    );
    assert_eq!(world.space_commits(), 3);
    let tags: Vec<Value> = world.space_refs()["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(tags.len(), 2, "{tags:?}");

    // v1.1.0 again, with a Space that differs from the one released at that tag.
    let dist = world.ctx.path().join("dist");
    std::fs::write(
        dist.join("space/index.html"),
        "<!doctype html><title>Other</title>\n",
    )
    .expect("write");
    let manifest_path = dist.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("json");
    let (bytes, sha256) =
        tinydit_release::bundle::hash_file(&dist.join("space/index.html")).expect("hash");
    for file in manifest["space"]["files"].as_array_mut().expect("files") {
        if file["path"] == "index.html" {
            file["bytes"] = json!(bytes);
            file["sha256"] = json!(sha256);
        }
    }
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).expect("json"),
    )
    .expect("write");
    world
        .publish("1.1.0")
        .status(2)
        .stderr_has("`v1.1.0` is already released on the Space `alice/tinydit-demo` with different content: `index.html` differs");
}

/// The Space's files at `v1.2.0`, downloaded from the Hub emulator into a folder: exactly the
/// files `check` built (`built`, sorted), byte for byte.
fn download_space(world: &World, dist: &Path, built: &[String]) -> PathBuf {
    let from_hub = world.ctx.path().join("space-from-hub");
    std::fs::create_dir_all(&from_hub).expect("dir");
    let tree = world.hub.get(
        &format!("/api/spaces/{SPACE}/tree/v1.2.0?recursive=true"),
        super::HF_TOKEN,
    );
    let mut on_hub = Vec::new();
    for entry in tree.as_array().expect("tree") {
        let path = entry["path"].as_str().expect("path");
        if path == ".gitattributes" {
            continue;
        }
        let mut response = ureq::get(format!(
            "{}/spaces/{SPACE}/resolve/v1.2.0/{path}",
            world.hub.url
        ))
        .call()
        .expect("resolve");
        let bytes = response.body_mut().read_to_vec().expect("bytes");
        assert_eq!(
            bytes,
            std::fs::read(dist.join("space").join(path)).expect("built file"),
            "`{path}` on the Hub is the file check built"
        );
        std::fs::write(from_hub.join(path), bytes).expect("write");
        on_hub.push(path.to_owned());
    }
    on_hub.sort();
    assert_eq!(
        on_hub, built,
        "the Space holds exactly the files check built"
    );
    from_hub
}

/// The page in `from_hub` in headless Chromium against the release on the Hub emulator, one
/// image per class for the Space's seed, against `sample` of the same model and seed: the noise
/// bit-identical, every image within 40 dB PSNR.
fn browser_matches_sample(world: &World, dist: &Path, from_hub: &Path, ort: &Path) {
    let space: Value =
        serde_json::from_slice(&std::fs::read(dist.join("space/space.json")).expect("space.json"))
            .expect("json");
    assert_eq!(
        space["revision"], "v1.2.0",
        "the page loads the release's tag"
    );
    let seed = space["defaults"]["seed"].as_str().expect("seed").to_owned();
    let model = dist
        .join("bundle")
        .join(space["generator"]["file"].as_str().expect("file"));

    let browser_out = world.ctx.path().join("browser");
    let output = Command::new("node")
        .arg(crate::common::repo_root().join("tests/browser/space-test.mjs"))
        .arg(from_hub)
        .arg(&world.hub.url)
        .arg(&browser_out)
        .arg(&seed)
        .arg("1")
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "the browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("result JSON");
    assert_eq!(
        result["isolated"], true,
        "the Space's headers isolate the page"
    );

    let cli_out = world.ctx.path().join("cli");
    std::fs::create_dir_all(&cli_out).expect("dir");
    let run = world
        .ctx
        .command([
            "sample",
            "--config",
            "fx/release.toml",
            "--model",
            model.to_str().expect("utf-8"),
            "--seed",
            &seed,
            "--out",
            cli_out.to_str().expect("utf-8"),
            "--save-tensor",
            cli_out.join("final.npy").to_str().expect("utf-8"),
        ])
        .env("ORT_DYLIB_PATH", ort)
        .output()
        .expect("sample");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (shape, finals) = crate::common::read_npy(&cli_out.join("final.npy"));
    let len: usize = shape[1..].iter().product();

    // Noise: the same bits as the CLI's generator.
    let noise = read_f32(&browser_out.join("noise.f32"));
    let mut expected = vec![0.0_f32; len];
    tinydit_release::smoke::noise::NoiseStream::new(seed.parse().expect("u64")).fill(&mut expected);
    assert_eq!(noise.len(), len);
    assert!(
        noise
            .iter()
            .zip(&expected)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "the page's noise differs from noise.rs"
    );
    let generation: Value = serde_json::from_slice(
        &std::fs::read(dist.join("bundle/generation_config.json")).expect("generation_config"),
    )
    .expect("json");
    let images = result["images"].as_array().expect("images");
    if generation["cfg"] == "explicit" {
        assert_eq!(
            images.len(),
            shape[0] - 1,
            "every class but the unconditional one"
        );
    } else {
        assert_eq!(images.len(), shape[0], "every class");
    }
    for image in images {
        let breed = image["breed"].as_u64().expect("breed") as usize;
        let browser = read_f32(&browser_out.join(format!("{breed}.f32")));
        let cli = &finals[breed * len..(breed + 1) * len];
        let db = psnr(&browser, cli);
        assert!(db >= 40.0, "class {breed}: PSNR {db:.1} dB < 40 dB");
    }
}

/// A baked-guidance export (the graph applies classifier-free guidance itself) is sampled with
/// one model call per step in the browser, as by `sample`: guiding it again, as the authors' page
/// does, would draw other images, and the comparison with `sample` would fail.
#[test]
fn a_baked_guidance_export_is_guided_once_in_the_browser() {
    let ort = crate::common::require_ort();
    let toml = fixture_release_toml(&format!("\n[space]\nrepo = \"{SPACE}\"\n"))
        .replace(
            "path = \"onnx/generator.onnx\"",
            "path = \"onnx/generator_cfg.onnx\"",
        )
        .replace("uncond-class = 12\n", "uncond-class = 12\ncfg = \"baked\"\n")
        .replace(
            "[smoke.golden]\ninputs = \"golden/inputs.safetensors\"\noutputs = \"golden/outputs.safetensors\"\n",
            "",
        );
    assert!(toml.contains("cfg = \"baked\""), "{toml}");
    let (world, dist) = checked_world(&toml, &ort);
    let generation: Value = serde_json::from_slice(
        &std::fs::read(dist.join("bundle/generation_config.json")).expect("generation_config"),
    )
    .expect("json");
    assert_eq!(generation["cfg"], "baked");
    world
        .run(&[
            "publish",
            "--config",
            "fx/release.toml",
            "--bundle",
            "fx/dist",
            "--json",
        ])
        .status(0);
    let mut built: Vec<String> = std::fs::read_dir(dist.join("space"))
        .expect("space dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    built.sort();
    let from_hub = download_space(&world, &dist, &built);
    browser_matches_sample(&world, &dist, &from_hub, &ort);
}

/// The emulators and a git checkout of the fixture with `toml` as `fx/release.toml`, checked into
/// `fx/dist` (which must pass).
fn checked_world(toml: &str, ort: &Path) -> (World, PathBuf) {
    let world = World::in_context(
        TestContext::new()
            .fixture_at("tinydit", "fx")
            .file("fx/release.toml", toml)
            .git_commit_all(),
        &release_toml(""),
    );
    let dist = world.ctx.path().join("fx/dist");
    let check = world
        .command(
            &["check", "--config", "fx/release.toml", "--out", "fx/dist"],
            false,
        )
        .env("ORT_DYLIB_PATH", ort)
        .output()
        .expect("check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    (world, dist)
}
