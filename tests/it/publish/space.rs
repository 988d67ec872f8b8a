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
    let world = World::in_context(
        TestContext::new()
            .fixture_at("tinydit", "fx")
            .file("fx/release.toml", &toml)
            .git_commit_all(),
        &release_toml(""),
    );
    let dist = world.ctx.path().join("fx/dist");
    let check = world
        .command(
            &["check", "--config", "fx/release.toml", "--out", "fx/dist"],
            false,
        )
        .env("ORT_DYLIB_PATH", &ort)
        .output()
        .expect("check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
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
        .arg(&from_hub)
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
        .env("ORT_DYLIB_PATH", &ort)
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
    let images = result["images"].as_array().expect("images");
    assert_eq!(
        images.len(),
        shape[0] - 1,
        "every class but the unconditional one"
    );
    for image in images {
        let breed = image["breed"].as_u64().expect("breed") as usize;
        let browser = read_f32(&browser_out.join(format!("{breed}.f32")));
        let cli = &finals[breed * len..(breed + 1) * len];
        let db = psnr(&browser, cli);
        assert!(db >= 40.0, "class {breed}: PSNR {db:.1} dB < 40 dB");
    }
}
