//! Issue 14, items 3, 4 and 7: hostile text, from a pull request's `release.toml`, a server's
//! answer or a bundle, never panics the tool and reaches no output live.
//!
//! The judges are independent of our escaping: GitHub's own Markdown renderer (`cmarkgfm`, the
//! Python binding of GitHub's cmark-gfm, raw HTML let through) renders the step summary and the
//! card, Python's `ast` parses the card's Python snippet, and bash runs its shell snippet with
//! `printf` in place of the tool.

use crate::check::release_toml;
use crate::common::{TINYDIT_CLASSES, TestContext, require_ort};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};

/// What a renderer makes of a Markdown document: the HTML, every tag with its attributes, and
/// the text a reader sees.
struct Rendered {
    html: String,
    tags: Vec<(String, serde_json::Map<String, serde_json::Value>)>,
    text: String,
}

/// Renders `markdown` as GitHub does (cmark-gfm with its extensions), raw HTML kept so that any
/// that got through shows up as a tag.
fn render_like_github(markdown: &str) -> Rendered {
    const JUDGE: &str = r#"
import html.parser, json, sys
import cmarkgfm
from cmarkgfm.cmark import Options
markdown = sys.stdin.read()
out = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
class Parser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text = [], []
    def handle_starttag(self, tag, attrs):
        self.tags.append([tag, {k: v for k, v in attrs}])
    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
    def handle_data(self, data):
        self.text.append(data)
    def handle_comment(self, data):
        self.tags.append(["!--", {}])
parser = Parser()
parser.feed(out)
print(json.dumps({"html": out, "tags": parser.tags, "text": "".join(parser.text)}))
"#;
    let output = python(&["-c", JUDGE], markdown);
    let value: serde_json::Value = serde_json::from_str(&output).expect("judge prints JSON");
    Rendered {
        html: value["html"].as_str().expect("html").to_owned(),
        tags: value["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| {
                (
                    t[0].as_str().expect("tag").to_owned(),
                    t[1].as_object().expect("attrs").clone(),
                )
            })
            .collect(),
        text: value["text"].as_str().expect("text").to_owned(),
    }
}

/// Runs the venv's Python with `stdin`, returning stdout; fails the test on an error.
#[track_caller]
fn python(args: &[&str], stdin: &str) -> String {
    let python = std::env::var("TINYDIT_RELEASE_PYTHON").expect(
        "TINYDIT_RELEASE_PYTHON must name the venv python with cmarkgfm (`make test` sets it)",
    );
    let mut child = std::process::Command::new(python)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("python finishes");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Nothing in the rendered document is live beyond what this tool writes itself: only these
/// tags, links only to `hosts`, images only from the bundle (`allow_images`), and no HTML
/// comment.
#[track_caller]
fn assert_nothing_live(rendered: &Rendered, hosts: &[&str], allow_images: bool) {
    const OURS: &[&str] = &[
        "h1",
        "h2",
        "h3",
        "p",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "code",
        "pre",
        "strong",
        "em",
        "ul",
        "li",
        "blockquote",
        "hr",
        "a",
        "img",
    ];
    for (tag, attrs) in &rendered.tags {
        assert!(
            OURS.contains(&tag.as_str()),
            "a live <{tag}> in\n{}",
            rendered.html
        );
        if tag == "a" {
            let href = attrs["href"].as_str().unwrap_or_default();
            assert!(
                hosts.iter().any(|h| href.starts_with(h)),
                "a link to {href:?} in\n{}",
                rendered.html
            );
        }
        if tag == "img" {
            let src = attrs["src"].as_str().unwrap_or_default();
            assert!(
                allow_images && !src.contains(':') && !src.starts_with('/'),
                "an image from {src:?} in\n{}",
                rendered.html
            );
        }
    }
}

/// A TOML basic string holding `text` (JSON's escapes are TOML's).
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// Every value of the summary at once: HTML, images and links to another host, autolinks, a
/// mention, backtick runs, a pipe, emphasis, and multi-byte text.
const HOSTILE: &str = "猫 <img src=https://evil.example/i.png> ![i](https://evil.example/p.png) \
                       [l](https://evil.example) www.evil.example @octocat a`b``c | *e* _u_ 🐈";

/// A file name that tries the same (no `/`, no NUL).
const HOSTILE_FILE: &str = "notes <img src=x onerror=alert(1)> `t` ![i](https:evil) 猫.txt";

/// The step summary of a `check` on a pull request, whose `release.toml` names the model, a
/// metric and a gate, the classes, a bundle file and whose workflow names the output folder
/// with hostile text: GitHub's renderer finds nothing live in it, and every value is shown.
#[test]
fn the_step_summary_leaves_every_hostile_value_inert() {
    let ort = require_ort();
    let metric = format!("fid {HOSTILE}");
    let gates = format!(
        "[[gate]]\nmetric = {}\nmax = 50.0\n\n[[gate]]\nmetric = \"fid\"\nmax = 1.0\n",
        toml_string(&metric)
    );
    let classes: Vec<String> = (0..13).map(|i| format!("{HOSTILE} {i}")).collect();
    let toml = release_toml(&gates, "")
        .replace(
            "name = \"TinyDiT fixture\"",
            &format!("name = {}", toml_string(HOSTILE)),
        )
        .replace(
            TINYDIT_CLASSES,
            &serde_json::to_string(&classes).expect("json"),
        )
        .replace(
            "[metrics]\n",
            &format!(
                "[metrics]\n{} = {{ file = \"evaluation_report.json\", path = \"fid\" }}\n",
                toml_string(&metric)
            ),
        )
        .replace(
            "include = [\"inference.py\", \"requirements.txt\"]",
            &format!(
                "include = [\"inference.py\", {}]",
                toml_string(HOSTILE_FILE)
            ),
        );
    let out = "out `x` <b>b</b> @octocat";
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file("release.toml", &toml)
        .file(HOSTILE_FILE, "notes")
        .env("ORT_DYLIB_PATH", ort.display().to_string())
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_ACTIONS", "true")
        .env("INPUT_COMMAND", "check")
        .env("INPUT_CONFIG", "release.toml")
        .env("INPUT_OUT", out)
        .env("GITHUB_OUTPUT", "github_output")
        .env("GITHUB_STEP_SUMMARY", "step_summary.md");
    // The second gate refuses, so the summary lists refusals too.
    ctx.run(["action"]).assert_status(1);
    let summary =
        std::fs::read_to_string(ctx.path().join("step_summary.md")).expect("summary written");
    let rendered = render_like_github(&summary);
    assert_nothing_live(&rendered, &["https://huggingface.co/someone/"], false);
    // Shown, not dropped: the model, the metric, a class, the bundle file and the folder.
    for shown in [
        HOSTILE,
        &metric,
        HOSTILE_FILE,
        &format!("{out}/bundle"),
        "gate fid max failed",
    ] {
        assert!(
            rendered.text.contains(shown),
            "`{shown}` is not shown as text:\n{}",
            rendered.text
        );
    }
}

/// A step summary over GitHub's 1 MiB, from a pull request's `release.toml` (thousands of
/// gates on unknown metrics with multi-byte names): cut at a character boundary with a note,
/// never a panic that leaves no summary at all. A first gate on a metric of 1 to 6 letters
/// shifts the text after it, so the limit falls inside a character in some of the runs.
#[test]
fn a_summary_past_1_mib_is_cut_at_a_character_boundary() {
    for shift in 1..=6 {
        let mut toml = format!(
            "[model]\nname = \"m\"\nhub-repo = \"someone/m\"\n\n\
             [version]\nfrom = \"config\"\nvalue = \"1.0.0\"\n\n\
             [[gate]]\nmetric = \"{}\"\nmax = 1\n",
            "x".repeat(shift)
        );
        for i in 0..2500 {
            let _ = std::fmt::Write::write_fmt(
                &mut toml,
                format_args!(
                    "\n[[gate]]\nmetric = \"{i}{}\"\nmax = 1\n",
                    "猫".repeat(100)
                ),
            );
        }
        let ctx = TestContext::new()
            .file("release.toml", &toml)
            .env("GITHUB_ACTIONS", "true")
            .env("INPUT_COMMAND", "check")
            .env("INPUT_CONFIG", "release.toml")
            .env("INPUT_OUT", "out")
            .env("GITHUB_OUTPUT", "github_output")
            .env("GITHUB_STEP_SUMMARY", "step_summary.md");
        ctx.run(["action"]).assert_status(2);
        let bytes =
            std::fs::read(ctx.path().join("step_summary.md")).expect("a summary is written");
        assert!(bytes.len() < 1024 * 1024, "{} bytes", bytes.len());
        let summary = String::from_utf8(bytes).expect("whole characters only");
        assert!(
            summary.starts_with("## tinydit-release: error"),
            "{summary:.200}"
        );
        assert!(
            summary.ends_with(
                "_The summary was cut at GitHub's 1 MiB limit; `summary.md` in the output \
                 folder has all of it._\n"
            ),
            "{}",
            &summary[summary.floor_char_boundary(summary.len().saturating_sub(300))..]
        );
    }
}

/// The classes of the TinyDiT fixtures with names beyond Latin-1 and names full of quotes.
fn unicode_classes() -> Vec<String> {
    let mut classes: Vec<String> = serde_json::from_str(TINYDIT_CLASSES).expect("classes");
    let names = [
        "猫",
        "🐈 tabby",
        "Bengal \"quoted\" & 'single' <b>x</b> | `tick`",
    ];
    for (class, name) in classes.iter_mut().zip(names) {
        name.clone_into(class);
    }
    classes
}

/// Issue 14: PNG `tEXt` chunks hold Latin-1 only, so a model with a class named `猫` could never
/// be released. Its samples now carry the title in `iTXt`, and the release passes; the card
/// shows every class name as text, in its table and in each image's `alt`.
#[test]
fn classes_named_beyond_latin_1_are_released() {
    let ort = require_ort();
    let classes = unicode_classes();
    let toml = release_toml("[[gate]]\nmetric = \"fid\"\nmax = 50.0\n", "").replace(
        TINYDIT_CLASSES,
        &serde_json::to_string(&classes).expect("json"),
    );
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file("release.toml", &toml)
        .env("ORT_DYLIB_PATH", ort.display().to_string())
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567");
    let run = ctx.run(["check", "--out", "out"]);
    run.assert_status(0);
    let bundle = ctx.path().join("out/bundle");

    // The sample of class 0 names it in a UTF-8 text chunk.
    let sample = std::fs::read_dir(bundle.join("samples"))
        .expect("samples")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("00-"))
        })
        .expect("a sample of class 0");
    let reader = png::Decoder::new(BufReader::new(std::fs::File::open(&sample).expect("open")))
        .read_info()
        .expect("a valid PNG");
    let titles: Vec<String> = reader
        .info()
        .utf8_text
        .iter()
        .map(|t| t.get_text().expect("text"))
        .collect();
    assert_eq!(titles, ["猫 #0"], "{}", sample.display());

    // The card: each class in the table and in the `alt` of its sample, as text.
    let readme = std::fs::read_to_string(bundle.join("README.md")).expect("card");
    let body = readme
        .splitn(3, "---\n")
        .nth(2)
        .expect("a card with front matter");
    let rendered = render_like_github(body);
    assert_nothing_live(&rendered, &["https://"], true);
    for class in &classes {
        assert!(
            rendered.text.contains(class.as_str()),
            "{class} not in\n{}\n{body}",
            rendered.text
        );
        assert!(
            rendered
                .tags
                .iter()
                .any(|(tag, attrs)| tag == "img" && attrs["alt"] == class.as_str()),
            "no <img alt={class:?}> in\n{}",
            rendered.html
        );
    }
}

/// Names that try to become code in the card's usage snippets.
const SNIPPET_CLASS: &str = "a'b\"c $(touch pwned-sh) `touch pwned-tick` \\ \n# end";
const SNIPPET_GENERATOR: &str = "onnx/g'e\"n $(touch pwned) \\\n\"\"\"x.onnx";
const SNIPPET_WEIGHTS: &str = "w\"); import os; os.system('touch pwned'); (\".safetensors";
const SNIPPET_INPUT: &str = "in\"put'\n\u{202e}x";

/// Every string literal of a Python source, sorted, as JSON.
const PY_STRING_LITERALS: &str = r"
import ast, json, sys
found = []
for node in ast.walk(ast.parse(sys.stdin.read())):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        found.append(node.value)
print(json.dumps(sorted(found)))
";

/// Issue 14: a class name, a path and an input name from `release.toml` stay data in the card's
/// usage: Python's parser reads each literal back as the value, and bash, running the shell
/// snippet with `printf` in place of the tool, gets each word back and runs nothing.
#[test]
fn the_cards_usage_snippets_quote_hostile_names_and_paths() {
    let mut classes: Vec<String> = serde_json::from_str(TINYDIT_CLASSES).expect("classes");
    classes[0] = SNIPPET_CLASS.to_owned();
    let toml = release_toml("", "")
        .replace(
            TINYDIT_CLASSES,
            &serde_json::to_string(&classes).expect("json"),
        )
        .replace(
            "output = \"tinydit.safetensors\"",
            &format!("output = {}", toml_string(SNIPPET_WEIGHTS)),
        )
        .replace(
            "path = \"onnx/generator.onnx\"\nrole = \"generator\"",
            &format!(
                "path = \"onnx/generator.onnx\"\nrole = \"generator\"\noutput = {}",
                toml_string(SNIPPET_GENERATOR)
            ),
        )
        .replace(
            "inputs = { label = \"breed\" }",
            &format!("inputs = {{ label = {} }}", toml_string(SNIPPET_INPUT)),
        );
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file("release.toml", &toml);
    ctx.run(["card", "-o", "card.md"]).assert_status(0);
    let card = std::fs::read_to_string(ctx.path().join("card.md")).expect("card");

    // Every fence still closes where the template closes it.
    let fences: Vec<&str> = card.lines().filter(|l| l.starts_with("```")).collect();
    assert_eq!(fences.len() % 2, 0, "{card}");

    // Python: the snippets parse, and their string literals are exactly the values.
    let python_blocks: Vec<&str> = card
        .split("```python\n")
        .skip(1)
        .map(|b| b.split("\n```").next().expect("closed"))
        .collect();
    assert_eq!(python_blocks.len(), 2, "{card}");
    let literals: Vec<String> = serde_json::from_str(&python(
        &["-c", PY_STRING_LITERALS],
        &python_blocks.join("\n"),
    ))
    .expect("json");
    let mut expected = vec![
        SNIPPET_GENERATOR.to_owned(),
        "velocity".to_owned(),
        "noise".to_owned(),
        "timestep".to_owned(),
        SNIPPET_INPUT.to_owned(),
        SNIPPET_WEIGHTS.to_owned(),
    ];
    expected.sort();
    assert_eq!(literals, expected, "{card}");

    // Shell: the command parses, and run with `printf` in its place gives back each word and
    // starts nothing.
    let command = card
        .lines()
        .find(|l| l.starts_with("tinydit-release sample "))
        .expect("the sample command");
    let check = std::process::Command::new("bash")
        .args(["-n", "-c", command])
        .output()
        .expect("bash runs");
    assert!(check.status.success(), "{command}");
    let echoed = command.replacen("tinydit-release sample", "printf '%s\\0'", 1);
    let output = std::process::Command::new("bash")
        .args(["-c", &echoed])
        .current_dir(ctx.path())
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{command}");
    let words: Vec<String> = String::from_utf8(output.stdout)
        .expect("UTF-8")
        .split_terminator('\0')
        .map(str::to_owned)
        .collect();
    assert_eq!(
        words,
        [
            "--model",
            SNIPPET_GENERATOR,
            "--breed",
            SNIPPET_CLASS,
            "--num-images",
            "4",
            "--out",
            "samples/"
        ],
        "{command}"
    );
    for planted in ["pwned", "pwned-sh", "pwned-tick"] {
        assert!(!ctx.path().join(planted).exists(), "{command} ran code");
    }
}

/// A server that answers fixed JSON bodies by path (query ignored) and 404 otherwise, one
/// connection per request; enough to stand in for a hostile Hub or GitHub.
struct FixedServer {
    url: String,
}

impl FixedServer {
    fn start(routes: Vec<(String, String)>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let routes = routes.clone();
                std::thread::spawn(move || answer(stream, &routes));
            }
        });
        Self { url }
    }
}

fn answer(mut stream: std::net::TcpStream, routes: &[(String, String)]) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    let (status, body) = routes
        .iter()
        .find(|(route, _)| route == path)
        .map_or(("404 Not Found", "{\"error\":\"not found\"}"), |(_, b)| {
            ("200 OK", b.as_str())
        });
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A bundle of one file with its manifest in `dist/`, for `plan --bundle dist`.
fn small_bundle(ctx: &TestContext) {
    let bundle = ctx.path().join("dist/bundle");
    std::fs::create_dir_all(&bundle).expect("mkdir");
    std::fs::write(
        bundle.join("README.md"),
        "---\nlicense: apache-2.0\n---\n# m\n",
    )
    .expect("card");
    let (bytes, sha256) =
        tinydit_release::bundle::hash_file(&bundle.join("README.md")).expect("hash");
    let manifest = serde_json::json!({
        "schema_version": tinydit_release::manifest::MANIFEST_SCHEMA_VERSION,
        "tool": "tinydit-release test",
        "model": "m",
        "hub_repo": "alice/m",
        "github_repo": "alice/src",
        "version": "1.0.0",
        "tag": "v1.0.0",
        "source": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": false},
        "outcome": "pass",
        "files": [{"path": "README.md", "bytes": bytes, "sha256": sha256}],
    });
    std::fs::write(
        ctx.path().join("dist/manifest.json"),
        serde_json::to_vec_pretty(&manifest).expect("json"),
    )
    .expect("manifest");
}

/// A test folder with `toml`, a bundle, and the Hub and GitHub at `hub` and `github` (with
/// tokens, so `plan` reads them).
fn plan_context(toml: &str, hub: &str, github: &str) -> TestContext {
    let ctx = TestContext::new().file("release.toml", toml);
    small_bundle(&ctx);
    let home = ctx.path().join("hf-home").display().to_string();
    ctx.env("HF_ENDPOINT", hub)
        .env("GITHUB_API_URL", github)
        .env("HF_HOME", home)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_TOKEN", "hf_test_token")
        .env("GITHUB_TOKEN", "ghp_test_token")
}

const PLAN_TOML: &str = "[model]\nname = \"m\"\nhub-repo = \"alice/m\"\ngithub-repo = \"alice/src\"\n\n\
                         [version]\ntag-prefix = \"v\"\n";

/// Issue 14: a commit id from the Hub or GitHub is checked where it enters. A ref whose commit
/// is multi-byte text (which a shortened display would cut inside a character) or a path (which
/// would become part of the next request's URL) stops `plan` with exit 2 naming the ref.
#[test]
fn commit_ids_from_the_hub_and_github_must_be_hex() {
    let hostile_commit = "猫".repeat(13) + "/../../x";
    let hub_refs = serde_json::json!({
        "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": hostile_commit}],
        "tags": [],
        "converts": [],
    });
    let hub = FixedServer::start(vec![(
        "/api/models/alice/m/refs".to_owned(),
        hub_refs.to_string(),
    )]);
    let github_ref = serde_json::json!({
        "ref": "refs/tags/v1.0.0",
        "object": {"sha": "../../../user", "type": "tag", "url": "x"},
    });
    let github = FixedServer::start(vec![
        ("/repos/alice/src/releases".to_owned(), "[]".to_owned()),
        (
            "/repos/alice/src/git/ref/tags/v1.0.0".to_owned(),
            github_ref.to_string(),
        ),
    ]);

    let ctx = plan_context(PLAN_TOML, &hub.url, &github.url);
    let run = ctx.run(["plan", "--bundle", "dist", "--version", "1.0.0"]);
    run.assert_status(2).assert_stderr_contains(&format!(
        "the commit the Hub lists for the branch `main` of `alice/m` is `{hostile_commit}`, \
         not a commit id (40 hexadecimal digits)"
    ));

    let toml = format!("{PLAN_TOML}\n[publish]\nhub = false\n");
    let ctx = plan_context(&toml, &hub.url, &github.url);
    let run = ctx.run(["plan", "--bundle", "dist", "--version", "1.0.0"]);
    run.assert_status(2).assert_stderr_contains(
        "the object GitHub lists for the tag `v1.0.0` of `alice/src` is `../../../user`, not a \
         commit id (40 hexadecimal digits)",
    );
}

/// A manifest handed over from another job with a source commit that is not hex is refused
/// before it is used.
#[test]
fn a_manifest_whose_source_commit_is_not_hex_is_refused() {
    let ctx = TestContext::new().file("release.toml", PLAN_TOML);
    small_bundle(&ctx);
    let path = ctx.path().join("dist/manifest.json");
    let text = std::fs::read_to_string(&path).expect("manifest");
    std::fs::write(
        &path,
        text.replace("0123456789abcdef0123456789abcdef01234567", "0123456789猫"),
    )
    .expect("write");
    let run = ctx.run(["plan", "--bundle", "dist", "--version", "1.0.0"]);
    run.assert_status(2)
        .assert_stderr_contains("the source commit (`source.commit`) is `0123456789猫`");
}
