//! Test harness: spawns an emulator binary on port 0 in its own temp folder, waits for its
//! `listening on` line, and talks to it with a plain HTTP client that never follows redirects
//! and never turns an HTTP status into an error.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// A running emulator; killed when dropped.
pub struct Emulator {
    child: Child,
    bin: &'static str,
    /// Base URL of the API listener.
    pub url: String,
    /// Base URL of the second listener (the Hub's CDN, GitHub's uploads).
    pub second: String,
    /// The data folder.
    pub data: PathBuf,
}

/// The Hub emulator's binary.
pub const HUB: &str = env!("CARGO_BIN_EXE_hub-emulator");
/// The GitHub emulator's binary.
pub const GITHUB: &str = env!("CARGO_BIN_EXE_github-emulator");

impl Emulator {
    /// Starts `bin` on `data` with `seed` written to a file beside it.
    pub fn start(bin: &'static str, data: &Path, seed: &Value) -> Self {
        let seed_path = data.with_extension("seed.json");
        std::fs::write(&seed_path, seed.to_string()).expect("write seed");
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(data)
            .arg("--port")
            .arg("0")
            .arg("--seed")
            .arg(&seed_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn emulator");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let second = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = tx.send((first, second));
            // Keep draining so the emulator never blocks on a full pipe.
            for _ in lines {}
        });
        let (first, second) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("emulator printed nothing within 20 s");
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line is not `listening on URL`: {first:?}"))
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let second = second.split_once(" on ").map_or_else(
            || panic!("second line names no URL: {second:?}"),
            |(_, u)| u.to_owned(),
        );
        Self {
            child,
            bin,
            url,
            second,
            data: data.to_path_buf(),
        }
    }

    /// Stops the process and starts it again on the same data folder (new ports).
    pub fn restart(self) -> Self {
        let bin = self.bin;
        let data = self.data.clone();
        drop(self);
        Self::start(bin, &data, &serde_json::json!({}))
    }

    /// Every logged request, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.data.join("requests.jsonl"))
            .expect("request log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON log line"))
            .collect()
    }

    /// Writes `faults.json`.
    pub fn faults(&self, faults: &Value) {
        std::fs::write(self.data.join("faults.json"), faults.to_string()).expect("write faults");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: ureq::http::HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request: method, URL, optional token, headers and body.
#[must_use]
pub struct Call {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Starts a request.
pub fn call(method: &str, url: &str) -> Call {
    Call {
        method: method.to_owned(),
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

impl Call {
    /// `Authorization: Bearer token`.
    pub fn token(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Any header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body.
    pub fn json(self, value: &Value) -> Self {
        self.body("application/json", value.to_string())
    }

    /// A raw body.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers
            .push(("content-type".to_owned(), content_type.to_owned()));
        self.body = body.into();
        self
    }

    /// Sends it; `Err` only for transport failures (e.g. a dropped connection).
    pub fn try_send(self) -> Result<Reply, ureq::Error> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_mins(1)))
            .build()
            .into();
        macro_rules! with_headers {
            ($b:expr) => {{
                let mut b = $b;
                for (k, v) in &self.headers {
                    b = b.header(k, v);
                }
                b
            }};
        }
        let result = match self.method.as_str() {
            "POST" => with_headers!(agent.post(&self.url)).send(&self.body[..]),
            "PUT" => with_headers!(agent.put(&self.url)).send(&self.body[..]),
            "PATCH" => with_headers!(agent.patch(&self.url)).send(&self.body[..]),
            m => {
                let b = match m {
                    "GET" => agent.get(&self.url),
                    "HEAD" => agent.head(&self.url),
                    "DELETE" => agent.delete(&self.url),
                    other => panic!("method {other} not supported by the harness"),
                };
                let b = with_headers!(b);
                if self.body.is_empty() {
                    b.call()
                } else {
                    b.force_send_body().send(&self.body[..])
                }
            }
        };
        let mut response = result?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_vec()?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Sends it and expects an HTTP answer.
    #[track_caller]
    pub fn send(self) -> Reply {
        match self.try_send() {
            Ok(reply) => reply,
            Err(e) => panic!("transport error: {e}"),
        }
    }
}
