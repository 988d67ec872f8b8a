//! `publish`, `plan` and the action against hostile servers (issue 14, items 1 and 2), built
//! from the emulators' faults: servers that echo our token in a body and `X-Error-Message`, at
//! every step of a release and after retries; servers that accept and never answer, or answer a
//! byte at a time; answers far larger than what they carry; a lying `X-Linked-Size`; a `Link` to
//! another origin and a `Link` that never ends. Each run must end (exit 2, naming the host) within
//! a bound, with bounded memory, and no token may appear in its output or in any file it wrote.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{GH_REPO, GH_TOKEN, HF_TOKEN, Outcome, REPO, World};

/// Short limits, so a hang costs seconds: every attempt of a call ends within `REQUEST` s and
/// the backoff makes four attempts.
const CONNECT: &str = "2";
const READ: &str = "2";
const REQUEST: &str = "4";
/// How long any hostile run may take: four attempts of `REQUEST` s, the backoff's waits, a few
/// calls that succeed, and a loaded machine.
const BOUND: Duration = Duration::from_secs(90);
/// Peak resident memory a run may reach while a server offers gigabytes (KiB).
const MAX_RSS_KIB: u64 = 400 * 1024;

/// What a bounded run did.
struct Bounded {
    outcome: Outcome,
    elapsed: Duration,
    /// `VmHWM` of the process, sampled until it exited (KiB).
    peak_kib: u64,
}

/// Runs `command` with the short limits, kills it past [`BOUND`] (failing the test), samples its
/// peak memory, and checks that no token reached stdout or stderr.
#[track_caller]
fn bounded(mut command: Command) -> Bounded {
    command
        .env("TINYDIT_RELEASE_CONNECT_TIMEOUT", CONNECT)
        .env("TINYDIT_RELEASE_READ_TIMEOUT", READ)
        .env("TINYDIT_RELEASE_REQUEST_TIMEOUT", REQUEST)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn");
    // Read the pipes while it runs, so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        text
    });
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if started.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the run did not end within {BOUND:?}\n--- stderr\n{}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let outcome = Outcome {
        status: status.code(),
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    };
    outcome.assert_no_secrets();
    Bounded {
        outcome,
        elapsed: started.elapsed(),
        peak_kib,
    }
}

impl Bounded {
    /// Exit 2, the host named, within the bound and without a large allocation.
    #[track_caller]
    fn failed_naming(&self, host: &str) -> &Self {
        self.outcome.status(2).stderr_has(host);
        assert!(self.elapsed < BOUND, "took {:?}", self.elapsed);
        assert!(
            self.peak_kib < MAX_RSS_KIB,
            "peak memory {} MiB\n{}",
            self.peak_kib / 1024,
            self.outcome.stderr
        );
        self
    }
}

/// `host:port` of an emulator URL.
fn host(url: &str) -> &str {
    url.trim_start_matches("http://")
}

/// No token in any file under `root` that the tool (not an emulator, not a seed) could have
/// written: the bundle, the manifest, reports, the action's summary and outputs.
#[track_caller]
fn assert_no_token_in_files(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // The emulators keep the seeded tokens in their state.
            if name.starts_with("hub-data") || name.starts_with("gh-data") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).expect("read");
            seen += 1;
            for token in [HF_TOKEN, GH_TOKEN, "s3cr3t"] {
                assert!(
                    !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                    "a token in `{}`",
                    path.display()
                );
            }
        }
    }
    assert!(seen > 0, "no file to check under {}", root.display());
}

fn seed(url: &str, body: &Value) {
    let mut response = ureq::post(format!("{url}/_emulator/seed"))
        .config()
        .http_status_as_error(false)
        .build()
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .expect("seed");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.body_mut().read_to_string()
    );
}

fn publish(world: &World, version: &str) -> Command {
    world.command(
        &[
            "publish",
            "--bundle",
            "dist",
            "--version",
            version,
            "--json",
        ],
        true,
    )
}

/// Item 1: a server that quotes our `Authorization` header back, at each step of a release and
/// with a refusal (400, 401, 403) or a failure retried first (500): the run stops with exit 2,
/// the echo reaches stderr scrubbed, and no token is in any output or written file. A last run
/// without faults then finishes the release.
#[test]
fn a_server_that_echoes_the_token_never_gets_it_printed_or_written() {
    let world = World::new();
    let hub = host(&world.hub.url).to_owned();
    let github = host(&world.github.url).to_owned();
    // In the order publish meets them, so each run gets one step further.
    let cases: [(&str, &Value, &str); 10] = [
        (
            "Hub whoami",
            &json!({"method": "GET", "path": "/api/whoami-v2", "status": 400}),
            &hub,
        ),
        (
            "GitHub repository",
            &json!({"method": "GET", "path": "/repos/*/*", "status": 500}),
            &github,
        ),
        (
            "Hub refs",
            &json!({"method": "GET", "path": "/api/models/*/*/refs", "status": 500}),
            &hub,
        ),
        (
            "Hub preupload",
            &json!({"method": "POST", "path": "/api/models/*/*/preupload/*", "status": 400}),
            &hub,
        ),
        (
            "Hub commit",
            &json!({"method": "POST", "path": "/api/models/*/*/commit/*", "status": 400}),
            &hub,
        ),
        (
            "Hub tag",
            &json!({"method": "POST", "path": "/api/models/*/*/tag/*", "status": 500}),
            &hub,
        ),
        (
            "GitHub tag",
            &json!({"method": "POST", "path": "/repos/*/*/git/refs", "status": 400}),
            &github,
        ),
        (
            "GitHub release",
            &json!({"method": "POST", "path": "/repos/*/*/releases", "status": 500}),
            &github,
        ),
        (
            "GitHub asset upload",
            &json!({"method": "POST", "path": "/repos/*/*/releases/*/assets", "origin": "uploads", "status": 400}),
            host(&world.github.second),
        ),
        (
            "GitHub publish",
            &json!({"method": "PATCH", "path": "/repos/*/*/releases/*", "status": 400}),
            &github,
        ),
    ];
    for (step, fault, host) in cases {
        let mut fault = fault.clone();
        fault["action"] = json!("echo_token");
        let faults = json!({"faults": [fault]});
        world.hub.faults(&faults);
        world.github.faults(&faults);
        let run = bounded(publish(&world, "1.0.0"));
        run.failed_naming(host);
        assert!(
            run.outcome
                .stderr
                .contains("you sent `Authorization: Bearer ***`"),
            "{step}: the echo is shown, scrubbed:\n{}",
            run.outcome.stderr
        );
        assert_no_token_in_files(world.ctx.path());
        let echoed = world
            .hub
            .requests()
            .into_iter()
            .chain(world.github.requests())
            .filter(|r| r["fault"] == "echo_token")
            .count();
        assert!(echoed > 0, "{step}: the fault fired");
    }
    world.hub.faults(&json!({"faults": []}));
    world.github.faults(&json!({"faults": []}));
    let done = bounded(publish(&world, "1.0.0"));
    done.outcome.status(0);
    assert_eq!(done.outcome.json()["tag"], "v1.0.0");
}

/// Item 1 in the action: the echo reaches neither the `::error` annotation, the step summary nor
/// the outputs; the masks are the one place a token is named.
#[test]
fn the_action_keeps_an_echoed_token_out_of_annotations_summary_and_outputs() {
    let world = World::new();
    for fault in [
        json!({"method": "POST", "path": "/api/models/*/*/preupload/*", "status": 400}),
        json!({"method": "GET", "path": "/repos/*/*/releases", "status": 400}),
    ] {
        let mut fault = fault;
        fault["action"] = json!("echo_token");
        world.hub.faults(&json!({"faults": [fault.clone()]}));
        world.github.faults(&json!({"faults": [fault]}));
        let mut command = world.command(&["action"], false);
        command
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "push")
            .env("GITHUB_REF", "refs/tags/v1.0.0")
            .env("INPUT_COMMAND", "publish")
            .env("INPUT_BUNDLE", "dist")
            .env("INPUT_HF_TOKEN", format!("  {HF_TOKEN}\n"))
            .env("INPUT_GITHUB_TOKEN", GH_TOKEN)
            .env("GITHUB_OUTPUT", world.ctx.path().join("outputs"))
            .env("GITHUB_STEP_SUMMARY", world.ctx.path().join("summary.md"));
        let output = command.output().expect("run");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
        let (masks, rest): (Vec<&str>, Vec<&str>) =
            stdout.lines().partition(|l| l.starts_with("::add-mask::"));
        assert_eq!(
            masks,
            [
                format!("::add-mask::{HF_TOKEN}"),
                format!("::add-mask::{GH_TOKEN}")
            ],
            "trimmed, masked once each"
        );
        let rest = rest.join("\n");
        let annotation = rest
            .lines()
            .find(|l| l.starts_with("::error"))
            .unwrap_or_else(|| panic!("no annotation:\n{rest}"));
        assert!(annotation.contains("Bearer ***"), "{annotation}");
        for text in [rest.as_str(), &stderr] {
            for token in [HF_TOKEN, GH_TOKEN, "s3cr3t"] {
                assert!(!text.contains(token), "{token} in\n{text}");
            }
        }
        let summary =
            std::fs::read_to_string(world.ctx.path().join("summary.md")).expect("summary");
        assert!(
            summary.contains("you sent `Authorization: Bearer "),
            "{summary}"
        );
        assert_no_token_in_files(world.ctx.path());
    }
}

/// Item 1: a secret file's trailing newline is trimmed (the token works); a token with a control
/// character, whitespace or non-ASCII inside is refused, naming the variable, never the value,
/// before any request; so is an action input.
#[test]
fn tokens_are_trimmed_and_one_with_a_control_character_inside_is_refused() {
    let world = World::new();
    let plan = world
        .command(&["plan", "--version", "1.0.0", "--json"], false)
        .env("HF_TOKEN", format!("{HF_TOKEN}\n"))
        .env("GITHUB_TOKEN", format!(" {GH_TOKEN}\r\n"))
        .output()
        .expect("run");
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let before = (world.hub.requests().len(), world.github.requests().len());
    assert!(before.0 > 0, "the trimmed token was used");
    for (variable, value) in [
        ("HF_TOKEN", "hf_publish_s3cr3t\nwrite_token"),
        ("GITHUB_TOKEN", "ghp_publish_s3cr3t\u{1b}[0m"),
        ("HF_TOKEN", "hf_publish_s3cr3t write"),
    ] {
        let output = world
            .command(&["plan", "--version", "1.0.0"], true)
            .env(variable, value)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("`{variable}` contains")),
            "{stderr}"
        );
        assert!(!stderr.contains("s3cr3t"), "{stderr}");
    }
    let output = world
        .command(&["action"], false)
        .env("INPUT_COMMAND", "plan")
        .env("INPUT_HF_TOKEN", "hf_publish_s3cr3t\u{7}x")
        .env("INPUT_GITHUB_TOKEN", GH_TOKEN)
        .env("GITHUB_STEP_SUMMARY", world.ctx.path().join("summary.md"))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("action input `hf_token` contains a line break or another control"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("::add-mask::{GH_TOKEN}")),
        "the good token is masked though the other is refused"
    );
    assert!(!stdout.contains("s3cr3t\u{7}"), "{stdout}");
    // A refused variable stops only what goes online, and in the action it is reported like any
    // error: an annotation and the step summary.
    let schema = world
        .command(&["schema"], false)
        .env("HF_TOKEN", "hf_publish_s3cr3t\nx")
        .output()
        .expect("run");
    assert_eq!(schema.status.code(), Some(0));
    let output = world
        .command(&["action"], false)
        .env("INPUT_COMMAND", "plan")
        .env("INPUT_VERSION", "1.0.0")
        .env("GITHUB_TOKEN", "ghp_publish_s3cr3t\tx")
        .env("GITHUB_STEP_SUMMARY", world.ctx.path().join("summary2.md"))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("::error title=tinydit-release::`GITHUB_TOKEN` contains"),
        "{stdout}"
    );
    let summary = std::fs::read_to_string(world.ctx.path().join("summary2.md")).expect("summary");
    assert!(summary.contains("`GITHUB_TOKEN` contains"), "{summary}");
    assert!(!summary.contains("s3cr3t") && !stdout.contains("s3cr3t"));
    assert_eq!(
        (world.hub.requests().len(), world.github.requests().len()),
        before,
        "nothing was sent with a refused token"
    );
}

/// Item 2: servers that accept and never answer, at a read of ours, a write of hf-hub's, a read
/// of octocrab's and an asset upload; and servers that answer a byte at a time. Each run ends
/// with exit 2 naming the host within the bound, after the backoff's retries.
#[test]
fn a_server_that_hangs_or_drips_is_given_up_on_naming_the_host() {
    let world = World::new();
    let hub = host(&world.hub.url).to_owned();
    let github = host(&world.github.url).to_owned();
    let uploads = host(&world.github.second).to_owned();
    let cases = [
        (
            json!({"method": "GET", "path": "/api/models/*/*/refs", "action": "hang"}),
            &hub,
        ),
        (
            json!({"method": "GET", "path": "/api/whoami-v2", "action": "drip", "interval_ms": 500}),
            &hub,
        ),
        (
            json!({"method": "GET", "path": "/repos/*/*/releases", "action": "hang"}),
            &github,
        ),
        (
            json!({"method": "GET", "path": "/repos/*/*", "action": "drip", "interval_ms": 500}),
            &github,
        ),
        (
            json!({"method": "POST", "path": "/api/models/*/*/commit/*", "action": "hang"}),
            &hub,
        ),
        (
            json!({"method": "POST", "path": "/repos/*/*/releases/*/assets", "origin": "uploads", "action": "hang"}),
            &uploads,
        ),
    ];
    for (fault, host) in cases {
        let faults = json!({"faults": [fault]});
        world.hub.faults(&faults);
        world.github.faults(&faults);
        let run = bounded(publish(&world, "1.0.0"));
        run.failed_naming(host);
        assert!(
            run.outcome.stderr.contains("did not answer")
                && run.outcome.stderr.contains("TINYDIT_RELEASE_READ_TIMEOUT"),
            "{fault}:\n{}",
            run.outcome.stderr
        );
        let attempts = world
            .hub
            .requests()
            .into_iter()
            .chain(world.github.requests())
            .filter(|r| r["fault"] == fault["action"])
            .count();
        assert!(attempts >= 2, "{fault}: retried within the backoff");
    }
    world.hub.faults(&json!({"faults": []}));
    world.github.faults(&json!({"faults": []}));
    bounded(publish(&world, "1.0.0")).outcome.status(0);
}

/// Item 2: answers far larger than what they carry (a refs listing, a release list, an error
/// page) are read only up to their bound: exit 2 naming the host, memory bounded while the
/// server offers gigabytes.
#[test]
fn an_oversized_answer_is_read_only_up_to_its_bound() {
    let world = World::new();
    let hub = host(&world.hub.url).to_owned();
    let github = host(&world.github.url).to_owned();
    let huge = 4u64 << 30;
    for (fault, host, says) in [
        (
            json!({"method": "GET", "path": "/api/models/*/*/refs", "action": "huge_body", "bytes": huge}),
            &hub,
            "with more than 8388608 bytes",
        ),
        (
            json!({"method": "GET", "path": "/repos/*/*/releases", "action": "huge_body", "bytes": huge}),
            &github,
            "with more than 16777216 bytes",
        ),
        (
            json!({"method": "GET", "path": "/api/whoami-v2", "action": "huge_body", "bytes": huge, "status": 502}),
            &hub,
            "HTTP 502",
        ),
    ] {
        let faults = json!({"faults": [fault]});
        world.hub.faults(&faults);
        world.github.faults(&faults);
        let run = bounded(publish(&world, "1.0.0"));
        run.failed_naming(host).outcome.stderr_has(says);
        assert!(
            run.outcome.stderr.len() < 64 * 1024,
            "a bounded message: {} bytes",
            run.outcome.stderr.len()
        );
    }
}

/// Item 2: `X-Linked-Size: 1 TiB` on the download of the previous release's `metrics.json` (which
/// hf-hub preallocates from) changes nothing: the size is what is read. `check --baseline hub`
/// takes the baseline as before. Item 1: a Hub that echoes the token to `check --baseline hub`
/// gets a warning printed without it, and nothing `check` writes (bundle, manifest, report,
/// summary) holds it.
#[test]
fn a_lying_linked_size_is_not_believed_and_an_echo_is_not_written() {
    let ort = crate::common::require_ort();
    let gates = "[[gate]]\nmetric = \"fid\"\nmax-regression = 2.0\n";
    let fixture = crate::check::release_toml(gates, "").replace("someone/tinydit-fixture", REPO);
    let world = World::in_context(
        crate::common::TestContext::new().fixture_at("tinydit", "fx"),
        &super::release_toml(""),
    );
    std::fs::write(world.ctx.path().join("fx/release.toml"), &fixture).expect("write");
    bounded(publish(&world, "1.0.0")).outcome.status(0);
    let lie = json!({"faults": [{"method": "GET", "path": "/*/*/resolve/**", "action": "headers",
        "headers": {"X-Linked-Size": "1099511627776"}}]});
    world.hub.faults(&lie);
    let mut check = world.command(
        &[
            "check",
            "--config",
            "fx/release.toml",
            "--out",
            "fx/out",
            "--baseline",
            "hub",
        ],
        true,
    );
    check.env("ORT_DYLIB_PATH", &ort);
    let run = bounded(check);
    run.outcome
        .status(1)
        .stderr_has("`metrics.json` of `v1.0.0`")
        .stderr_has("against 40 before");
    assert!(run.peak_kib < MAX_RSS_KIB, "{} MiB", run.peak_kib / 1024);
    assert!(
        world.hub.requests().iter().any(|r| r["fault"] == "headers"),
        "the lie was told"
    );
    world.hub.faults(
        &json!({"faults": [{"method": "GET", "path": "/api/models/*/*/refs",
        "action": "echo_token", "status": 400}]}),
    );
    let mut check = world.command(
        &[
            "check",
            "--config",
            "fx/release.toml",
            "--out",
            "fx/out",
            "--baseline",
            "hub",
        ],
        true,
    );
    check.env("ORT_DYLIB_PATH", &ort);
    bounded(check)
        .outcome
        .status(1)
        .stderr_has("could not read the baseline from the Hub")
        .stderr_has("Bearer ***");
    assert!(world.ctx.path().join("fx/out/report.json").is_file());
    assert_no_token_in_files(world.ctx.path());
    world.hub.faults(&json!({"faults": []}));
    // `plan` reads the same file for the previous release.
    world.bundle("1.1.0", b"weights-v2");
    let plan = bounded(world.command(&["plan", "--version", "1.1.0", "--json"], true));
    plan.outcome.status(0);
    let plan = plan.outcome.json();
    assert_eq!(plan["previous_release"], "v1.0.0");
    assert_eq!(plan["metric_deltas"][0]["previous"], 40.0);
    assert_no_token_in_files(world.ctx.path());
}

/// Item 2: a `Link: rel="next"` to another origin is not followed (so our token never goes
/// there), on the Hub's file listing and GitHub's release list; a `Link` that never ends stops
/// at the page limit.
#[test]
fn pages_are_followed_only_on_their_origin_and_only_so_far() {
    let world = World::new();
    seed(
        &world.hub.url,
        &json!({"repos": [{"id": REPO, "type": "model"}]}),
    );
    let cdn = world.hub.second.clone();
    let uploads = world.github.second.clone();
    world.hub.faults(&json!({"faults": [{"method": "GET", "path": "/api/models/*/*/tree/**",
        "action": "headers",
        "headers": {"Link": format!("<{cdn}/api/models/{REPO}/tree/main?cursor=1>; rel=\"next\"")}}]}));
    let run = bounded(world.command(&["plan", "--version", "1.0.0"], true));
    run.failed_naming(host(&world.hub.url))
        .outcome
        .stderr_has("to another origin")
        .stderr_has(&cdn);
    assert!(
        world.hub.requests().iter().all(|r| r["origin"] != "cdn"),
        "nothing was sent to the other origin"
    );

    world.hub.faults(&json!({"faults": []}));
    world.github.faults(&json!({"faults": [{"method": "GET", "path": "/repos/*/*/releases",
        "action": "headers",
        "headers": {"Link": format!("<{uploads}/repos/{GH_REPO}/releases?page=2>; rel=\"next\"")}}]}));
    let run = bounded(world.command(&["plan", "--version", "1.0.0"], true));
    run.failed_naming(host(&world.github.url))
        .outcome
        .stderr_has("to another origin");
    assert!(
        world
            .github
            .requests()
            .iter()
            .all(|r| r["origin"] != "uploads"),
        "nothing was sent to the upload origin"
    );

    let api = world.github.url.clone();
    let fired = |world: &World| {
        world
            .github
            .requests()
            .iter()
            .filter(|r| r["fault"] == "headers")
            .count()
    };
    let before = fired(&world);
    world.github.faults(&json!({"faults": [{"method": "GET", "path": "/repos/*/*/releases",
        "action": "headers",
        "headers": {"Link": format!("<{api}/repos/{GH_REPO}/releases?per_page=100>; rel=\"next\"")}}]}));
    let run = bounded(world.command(&["plan", "--version", "1.0.0"], true));
    run.failed_naming(host(&world.github.url))
        .outcome
        .stderr_has("within 100 pages");
    assert_eq!(fired(&world) - before, 100, "stopped at the page limit");
}
