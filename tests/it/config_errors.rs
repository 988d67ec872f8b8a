//! Configuration problems: all reported at once, each at `release.toml:LINE:COL`, exit code 2.

use std::fmt::Write as _;

use crate::common::TestContext;

#[test]
fn every_problem_is_reported_with_its_position() {
    let ctx = TestContext::new().file(
        "release.toml",
        r#"[model]
name = "x"
hub-rpo = "a/b"
license = 3

[version]
from = "tga"

[smoke]
seed = -1
"#,
    );
    let run = ctx.run(["check"]);
    run.assert_status(2);
    insta::assert_snapshot!(run.stderr_redacted());
}

/// Cross-field rules run once the structure is sound, and also report everything at once.
#[test]
fn cross_field_problems_are_all_reported() {
    let ctx = TestContext::new().file("weights/model.pt", "x").file(
        "release.toml",
        r#"[model]
name = "x"
hub-repo = "not-a-repo-id"

[version]
from = "config"
value = "1.2"

[[checkpoint]]
path = "weights/missing.pt"
output = "../model.safetensors"
max-shard-size = "lots"

[[onnx]]
path = "/etc/passwd"
role = "classifier"

[generator]
image-size = 32
classes = ["a", "b", "a"]
uncond-class = 7
steps = 0

[smoke]
providers = ["cpu", "cpu"]
batch-size = 0

[[gate]]
metric = "fidd"
min = 2.0
max = 1.0

[metrics]
fid = { file = "eval.json", path = "fid" }
"#,
    );
    let run = ctx.run(["check"]);
    run.assert_status(2);
    insta::assert_snapshot!(run.stderr_redacted());
}

#[test]
fn a_path_that_escapes_the_repository_is_refused_with_its_position() {
    let outside = TestContext::new().file("secret.pt", "x");
    let ctx = TestContext::new().file(
        "release.toml",
        format!(
            "[model]\nname = \"x\"\nhub-repo = \"a/b\"\n\n[[checkpoint]]\npath = \"../{}/secret.pt\"\noutput = \"m.safetensors\"\n",
            outside.path().file_name().expect("name").to_string_lossy()
        ),
    );
    ctx.run(["check"])
        .assert_status(2)
        .assert_stderr_contains("release.toml:6:8: `checkpoint[0].path`")
        .assert_stderr_contains("leaves the repository");
}

#[cfg(unix)]
#[test]
fn a_symlink_that_leads_out_is_refused() {
    let outside = TestContext::new().file("secret.pt", "x");
    let ctx = TestContext::new().file(
        "release.toml",
        "[model]\nname = \"x\"\nhub-repo = \"a/b\"\n\n[[checkpoint]]\npath = \"link.pt\"\noutput = \"m.safetensors\"\n",
    );
    std::os::unix::fs::symlink(outside.path().join("secret.pt"), ctx.path().join("link.pt"))
        .expect("symlink");
    ctx.run(["check"])
        .assert_status(2)
        .assert_stderr_contains("release.toml:6:8:")
        .assert_stderr_contains("symlink that leads out of the repository");
}

#[test]
fn invalid_toml_is_reported_at_its_position() {
    TestContext::new()
        .file("release.toml", "[model]\nname = \"x\nhub-repo = \"a/b\"\n")
        .run(["check"])
        .assert_status(2)
        .assert_stderr_contains("release.toml:2:")
        .assert_stderr_contains("invalid TOML");
}

/// The rules not exercised above, in one file, so every validation message has a snapshot.
#[test]
fn the_remaining_rules_are_reported_too() {
    let ctx = TestContext::new()
        .file("gen.onnx", "x")
        .file("eval.json", "{}")
        .file("README.md", "# the repository's own readme")
        .file(
            "release.toml",
            r#"[model]
name = " "
hub-repo = "a/b"
github-repo = "no-slash"
license = "apache2"
pipeline-tag = "image-generation"

[version]
from = "tag"
value = "1.0.0"

[[onnx]]
path = "gen.onnx"
role = "generator"

[[onnx]]
path = "gen.onnx"
role = "generator"
output = "onnx/gen.onnx"

[generator]
image-size = 0
classes = []
cfg-scale = 500.0

[classifier]
image-size = 0
mean = [0.5]
std = [0.2, 0.0, 0.2]
labels = ["cat", "other"]
expect = "dog"

[smoke]
samples-per-class = 5000
batch-size = 9999

[smoke.golden]
inputs = "missing-in.safetensors"
outputs = "missing-out.safetensors"
atol = -1.0

[metrics]
"smoke.fid" = { file = "eval.json", path = "a..b" }

[[gate]]
metric = "smoke.latency_ms_p50"

[[gate]]
metric = "artifact.onnx/gen.onnx.size_mb"
max-regression = -1.0

[checks]
max-weights-mb = 0

[card]
template = "card.j2"
eval-metrics = ["bleu"]

[bundle]
include = ["../outside.txt", "README.md"]
samples-dir = "/abs"

[publish]
github-assets = ["../x"]
"#,
        );
    let run = ctx.run(["check"]);
    run.assert_status(2);
    insta::assert_snapshot!(run.stderr_redacted());
}

/// Issue 8: release.toml is checked to be a regular file of sane size before it is read: a
/// symlink to `/dev/zero` would read forever, a FIFO would block, a huge file would take
/// gigabytes to parse.
#[test]
fn a_config_that_is_a_device_a_fifo_a_folder_or_huge_is_refused() {
    let ctx = TestContext::new().file("big.toml", "# padding\n".repeat(120_000));
    std::os::unix::fs::symlink("/dev/zero", ctx.path().join("zero.toml")).expect("symlink");
    let status = std::process::Command::new("mkfifo")
        .arg(ctx.path().join("fifo.toml"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    std::fs::create_dir(ctx.path().join("dir.toml")).expect("mkdir");
    for (file, expected) in [
        ("zero.toml", "`zero.toml` is a device, not a file"),
        (
            "fifo.toml",
            "`fifo.toml` is a named pipe (FIFO), not a file",
        ),
        ("dir.toml", "`dir.toml` is a folder, not a file"),
        (
            "big.toml",
            "more than the 1048576 bytes accepted for `--config`",
        ),
    ] {
        ctx.run_with_timeout(
            ["check", "--config", file],
            std::time::Duration::from_secs(30),
        )
        .assert_status(2)
        .assert_stderr_contains(expected);
    }
}

/// Issue 8: values from release.toml echoed in messages cannot start a GitHub workflow command
/// or carry terminal escapes: they are escaped once, at the printer.
#[test]
fn config_values_in_messages_cannot_inject_workflow_commands() {
    let ctx = TestContext::new().file(
        "release.toml",
        r#"[model]
name = "x"
hub-repo = "a/b"

[[gate]]
metric = "fid\n::add-mask::fid\n::error title=forged::all gates passed\u001b[2J"
max = 1.0
"#,
    );
    let run = ctx.run(["check"]);
    run.assert_status(2).assert_stderr_contains(
        "fid\\n::add-mask::fid\\n::error title=forged::all gates passed\\x1b[2J",
    );
    for line in run.stderr.lines().chain(run.stdout.lines()) {
        assert!(
            !line.trim_start().starts_with("::"),
            "command line: {line:?}"
        );
        assert!(!line.contains('\u{1b}'), "escape code: {line:?}");
    }
}

/// Issue 14: `version.tag-prefix` becomes part of a git ref, `refs/tags/<prefix><version>`, on
/// GitHub and the Hub and in request URLs. `git check-ref-format` is the judge: what it refuses
/// is refused at the key's line and column, what it accepts is accepted.
#[test]
fn hostile_tag_prefixes_are_refused_at_their_position_as_git_refuses_them() {
    let accepted = [
        "v",
        "",
        "release-",
        "models/tinydit-v",
        "v.",
        "rel/",
        "ü-",
        "v@",
        "V_",
    ];
    let refused = [
        "v..",
        "a..b-",
        "v 1-",
        "v~",
        "v^",
        "v:",
        "v?",
        "v*",
        "v[",
        "v\\",
        "v\n",
        "\tv",
        "v\u{7f}",
        "\u{1b}[31mv",
        "v@{",
        "/v",
        "a//v",
        ".v",
        "a/.b/v",
        "a.lock/v",
    ];
    let is_ref = |prefix: &str| {
        // A prerelease, so every character a version may hold follows the prefix.
        std::process::Command::new("git")
            .args(["check-ref-format", &format!("refs/tags/{prefix}1.2.3-rc.1")])
            .status()
            .expect("git runs")
            .success()
    };
    for (prefix, valid) in accepted
        .iter()
        .map(|p| (p, true))
        .chain(refused.iter().map(|p| (p, false)))
    {
        assert_eq!(is_ref(prefix), valid, "git disagrees about {prefix:?}");
        let ctx = TestContext::new().file(
            "release.toml",
            format!(
                "[model]\nname = \"x\"\nhub-repo = \"a/b\"\n\n[version]\nfrom = \"config\"\n\
                 value = \"1.0.0\"\ntag-prefix = {}\n",
                toml_string(prefix)
            ),
        );
        let run = ctx.run(["validate"]);
        if valid {
            run.assert_status(0);
        } else {
            run.assert_status(2)
                .assert_stderr_contains("release.toml:8:14: `version.tag-prefix` = `")
                .assert_stderr_contains("cannot start a git tag name");
        }
    }
}

/// A TOML basic string holding `text`, control characters escaped.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The files `check` writes into every bundle (the card, `SHA256SUMS`, the release identity...)
/// cannot be taken by an included file: the include would silently replace, or be replaced by,
/// what the tool wrote.
#[test]
fn an_include_named_like_a_generated_file_is_refused() {
    for name in ["release.json", "SHA256SUMS", "metrics.json"] {
        let ctx = TestContext::new().file(name, "x").file(
            "release.toml",
            format!(
                "[model]\nname = \"x\"\nhub-repo = \"o/m\"\n\n[bundle]\ninclude = [\"{name}\"]\n"
            ),
        );
        let run = ctx.run(["validate"]);
        run.assert_status(2);
        assert!(
            run.stderr.contains(&format!(
                "`bundle.include[0]` = `{name}` is a file tinydit-release writes itself"
            )),
            "{name}: {}",
            run.stderr
        );
    }
}

/// `[space]`: every problem at its key, with the choices or a suggestion.
#[test]
fn space_problems_are_reported_at_their_keys() {
    let ctx = TestContext::new().file("g.onnx", "x").file(
        "release.toml",
        r#"[model]
name = "x"
hub-repo = "a/b"
license = "mit"

[version]
from = "config"
value = "1.0.0"

[[onnx]]
path = "g.onnx"
role = "generator"

[generator]
image-size = 32
classes = ["Bengal", "Other"]
uncond-class = 1

[space]
repo = "a/b"
color-from = "pinky"
generator = "int4"
breed = "Bengol"
steps = 0
short-description = "a description that is far too long for the card of a Space on the Hub"
"#,
    );
    let run = ctx.run(["check"]);
    run.assert_status(2);
    let stderr = run.stderr_redacted();
    for needle in [
        "release.toml:20:8: `space.repo` = `a/b` is the model repository",
        "release.toml:21:14: `space.color-from` = `pinky` is not a Space colour",
        "did you mean `pink`?",
        "release.toml:22:13: `space.generator` = `int4` is not a generator of this release",
        "choose one of full",
        "release.toml:23:9: `space.breed` = `Bengol` is not a class",
        "did you mean `Bengal`?",
        "release.toml:24:9: `space.steps` must be within 1..=1000, found 0",
        "release.toml:25:21: `space.short-description` must be one line of at most 60",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}
