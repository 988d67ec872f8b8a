//! What both emulators share around their routes: listeners on 127.0.0.1, one connection
//! task per client (so a fault can close a connection without answering), fault injection
//! from `faults.json`, the JSONL request log and the `/_emulator/faults` admin route.

use std::convert::Infallible;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt as _;

pub use crate::fault::{Fault, FaultAction, FaultsFile};
use crate::ratelimit::{Limiter, Quota, Service};
pub use crate::respond::{error_response, json_response};
use crate::util;

/// Name of the fault configuration in the data folder, re-read on every request.
pub const FAULTS_FILE: &str = "faults.json";
/// Name of the request log in the data folder: one JSON object per line.
pub const REQUEST_LOG: &str = "requests.jsonl";
/// Largest admin request body (fault lists, seeds).
const ADMIN_BODY_LIMIT: usize = 16 << 20;

/// One line of `requests.jsonl`. Headers are never logged (no `Authorization` value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    /// Milliseconds since the epoch when the request arrived.
    pub ts_ms: u64,
    /// Which listener took it (`api`, `cdn`, `uploads`).
    pub origin: String,
    /// HTTP method.
    pub method: String,
    /// Raw request path.
    pub path: String,
    /// Raw query string (empty when none).
    pub query: String,
    /// Status sent, `null` when the connection was closed without an answer.
    pub status: Option<u16>,
    /// The fault action that fired, if any; `rate_limit` for every answer a rate limit refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultAction>,
    /// Whether an `Authorization` header was present (its value is never logged).
    pub auth: bool,
}

/// State shared by every listener of one emulator.
pub struct Common {
    data: PathBuf,
    faults_lock: Mutex<()>,
    log: Mutex<Option<std::fs::File>>,
    limiter: Mutex<Limiter>,
}

impl Common {
    /// Opens (creates) the data folder and the request log of an emulator of `service`.
    pub fn open(data: &Path, service: Service, quota: Quota) -> Result<Arc<Self>> {
        std::fs::create_dir_all(data)
            .with_context(|| format!("creating data folder {}", data.display()))?;
        let data = data
            .canonicalize()
            .with_context(|| format!("resolving {}", data.display()))?;
        let log_path = data.join(REQUEST_LOG);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        Ok(Arc::new(Self {
            data,
            faults_lock: Mutex::new(()),
            log: Mutex::new(Some(log)),
            limiter: Mutex::new(Limiter::new(service, quota)),
        }))
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the rate-limit quota (from a seed's config).
    pub fn set_quota(&self, quota: Quota) {
        self.limiter().set_quota(quota);
    }

    /// The (absolute) data folder.
    pub fn data(&self) -> &Path {
        &self.data
    }

    fn faults_path(&self) -> PathBuf {
        self.data.join(FAULTS_FILE)
    }

    /// Reads `faults.json` (none when absent).
    pub fn read_faults(&self) -> Result<FaultsFile> {
        Ok(util::read_json(&self.faults_path())?.unwrap_or_default())
    }

    /// Replaces `faults.json`.
    pub fn write_faults(&self, faults: &FaultsFile) -> Result<()> {
        let _guard = self
            .faults_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        util::write_json(&self.faults_path(), faults)
    }

    /// The first fault matching this request, with its count decremented on disk.
    fn take_fault(&self, origin: &str, method: &Method, path: &str) -> Result<Option<Fault>> {
        let _guard = self
            .faults_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = self.read_faults()?;
        let Some(index) = file.faults.iter().position(|f| {
            f.method
                .as_deref()
                .is_none_or(|m| m == "*" || m.eq_ignore_ascii_case(method.as_str()))
                && f.origin.as_deref().is_none_or(|o| o == origin)
                && util::glob_match(&f.path, path)
        }) else {
            return Ok(None);
        };
        let fault = file.faults[index].clone();
        if let Some(after) = fault.after.filter(|&n| n > 0) {
            file.faults[index].after = Some(after - 1);
            util::write_json(&self.faults_path(), &file)?;
            return Ok(None);
        }
        if let Some(times) = fault.times {
            if times <= 1 {
                file.faults.remove(index);
            } else {
                file.faults[index].times = Some(times - 1);
            }
            util::write_json(&self.faults_path(), &file)?;
        }
        Ok(Some(fault))
    }

    fn log(&self, entry: &LogEntry) {
        let Ok(mut line) = serde_json::to_vec(entry) else {
            return;
        };
        line.push(b'\n');
        let mut guard = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(file) = guard.as_mut() {
            // One write per line, so concurrent lines never interleave.
            let _ = file.write_all(&line);
        }
    }

    /// Every logged request so far, oldest first.
    pub fn read_log(&self) -> Result<Vec<LogEntry>> {
        let path = self.data.join(REQUEST_LOG);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("parsing {}", path.display())))
            .collect()
    }
}

/// Binds `127.0.0.1:port` (0: any free port); returns the listener and its port.
pub async fn bind(port: u16) -> Result<(TcpListener, u16)> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let port = listener
        .local_addr()
        .context("reading the bound address")?
        .port();
    Ok((listener, port))
}

/// Writes `line` to stdout and flushes it (the first line is what test harnesses wait for).
pub fn announce(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("writing to stdout")?;
    out.flush().context("flushing stdout")
}

/// Serves `router` on `listener` until the process ends; `origin` names the listener in the
/// request log and in fault matching.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    common: Arc<Common>,
    origin: &'static str,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Accept errors (e.g. out of descriptors) are transient; back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let router = router.clone();
        let common = common.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let conn_kill = kill.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let router = router.clone();
                let common = common.clone();
                let kill = conn_kill.clone();
                async move { Ok::<_, Infallible>(handle(req, router, common, origin, kill).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = kill.notified() => {}
            }
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    router: Router,
    common: Arc<Common>,
    origin: &'static str,
    kill: Arc<Notify>,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    if path == "/_emulator/faults" {
        return faults_admin(req, &common).await;
    }
    let admin = path.starts_with("/_emulator/");
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut entry = LogEntry {
        ts_ms: u64::try_from(util::now_millis()).unwrap_or(u64::MAX),
        origin: origin.to_owned(),
        method: method.to_string(),
        path: path.clone(),
        query,
        status: None,
        fault: None,
        auth: req.headers().contains_key(header::AUTHORIZATION),
    };
    let fault = if admin {
        None
    } else {
        match common.take_fault(origin, &method, &path) {
            Ok(fault) => fault,
            Err(e) => {
                let response = error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("emulator: unreadable {FAULTS_FILE}: {e:#}"),
                );
                entry.status = Some(response.status().as_u16());
                common.log(&entry);
                return response;
            }
        }
    };
    let counted = !admin && common.limiter().counts(origin);
    if let Some(fault) = &fault {
        entry.fault = Some(fault.action);
        if let Some(ms) = fault.delay_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match fault.action {
            FaultAction::RateLimit => {
                let response = common.limiter().trip(fault, util::now_millis());
                entry.status = Some(response.status().as_u16());
                common.log(&entry);
                return response;
            }
            FaultAction::Status => {
                let status = StatusCode::from_u16(fault.status.unwrap_or(500))
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let message = fault
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("injected fault: {status}"));
                let mut response = error_response(status, &message);
                if let Some(retry) = &fault.retry_after
                    && let Ok(value) = HeaderValue::from_str(retry)
                {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                entry.status = Some(status.as_u16());
                common.log(&entry);
                return response;
            }
            FaultAction::Drop => {
                common.log(&entry);
                kill.notify_one();
                return std::future::pending().await;
            }
            FaultAction::EchoToken => {
                let status = StatusCode::from_u16(fault.status.unwrap_or(401))
                    .unwrap_or(StatusCode::UNAUTHORIZED);
                let text = format!(
                    "{}; you sent `Authorization: {}`",
                    fault.message.as_deref().unwrap_or("Invalid credentials"),
                    authorization.as_deref().unwrap_or("(none)")
                );
                let mut response = json_response(
                    status,
                    &serde_json::json!({ "error": text, "message": text }),
                );
                if let Ok(value) = HeaderValue::from_str(&text) {
                    response.headers_mut().insert("x-error-message", value);
                }
                entry.status = Some(status.as_u16());
                common.log(&entry);
                return response;
            }
            FaultAction::Hang => {
                common.log(&entry);
                return std::future::pending().await;
            }
            FaultAction::HugeBody => {
                let status =
                    StatusCode::from_u16(fault.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
                let mut response = Response::new(Body::new(Trickle::generated(
                    fault.bytes.unwrap_or(1 << 30),
                )));
                *response.status_mut() = status;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                entry.status = Some(status.as_u16());
                common.log(&entry);
                return response;
            }
            FaultAction::LoseResponse
            | FaultAction::Delay
            | FaultAction::Drip
            | FaultAction::Headers => {}
        }
    }
    if counted {
        let admitted = common.limiter().admit(util::now_millis());
        if let Err(response) = admitted {
            entry.fault = Some(FaultAction::RateLimit);
            entry.status = Some(response.status().as_u16());
            common.log(&entry);
            return response;
        }
    }
    let mut response = match router.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if counted {
        common.limiter().decorate(&mut response, util::now_millis());
    }
    if fault
        .as_ref()
        .is_some_and(|f| f.action == FaultAction::LoseResponse)
    {
        // The handler has run (its write is on disk); the client never hears of it.
        common.log(&entry);
        kill.notify_one();
        return std::future::pending().await;
    }
    if let Some(fault) = &fault {
        match fault.action {
            FaultAction::Headers => {
                for (name, value) in fault.headers.iter().flatten() {
                    if let (Ok(name), Ok(value)) = (
                        header::HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(value),
                    ) {
                        response.headers_mut().insert(name, value);
                    }
                }
            }
            FaultAction::Drip => {
                let (parts, body) = response.into_parts();
                let bytes = axum::body::to_bytes(body, ADMIN_BODY_LIMIT)
                    .await
                    .unwrap_or_default();
                let interval = Duration::from_millis(fault.interval_ms.unwrap_or(200));
                response =
                    Response::from_parts(parts, Body::new(Trickle::dripped(bytes, interval)));
            }
            _ => {}
        }
    }
    entry.status = Some(response.status().as_u16());
    if !admin {
        common.log(&entry);
    }
    response
}

/// A body sent piece by piece and never held whole: a real answer dripped a byte at a time
/// (`drip`), or a large generated one (`huge_body`).
struct Trickle {
    /// The bytes to drip, or one chunk repeated.
    data: Bytes,
    /// Next byte of `data` to drip.
    at: usize,
    /// Bytes left to send.
    left: u64,
    /// Wait between two pieces; zero for a generated body.
    interval: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Trickle {
    fn dripped(data: Bytes, interval: Duration) -> Self {
        Self {
            left: data.len() as u64,
            data,
            at: 0,
            interval,
            sleep: None,
        }
    }

    fn generated(bytes: u64) -> Self {
        Self {
            data: Bytes::from(vec![b'x'; 64 * 1024]),
            at: 0,
            left: bytes,
            interval: Duration::ZERO,
            sleep: None,
        }
    }
}

impl hyper::body::Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if !self.interval.is_zero() {
            let interval = self.interval;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
            let at = self.at;
            self.at += 1;
            self.left -= 1;
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(self.data.slice(at..=at)))));
        }
        let n = self.left.min(self.data.len() as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(hyper::body::Frame::data(self.data.slice(..n)))))
    }
}

async fn faults_admin(req: Request<Incoming>, common: &Common) -> Response<Body> {
    let method = req.method().clone();
    match method {
        Method::GET => match common.read_faults() {
            Ok(faults) => json_response(StatusCode::OK, &faults),
            Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
        },
        Method::POST | Method::PUT => {
            let body = match axum::body::to_bytes(Body::new(req.into_body()), ADMIN_BODY_LIMIT)
                .await
            {
                Ok(body) => body,
                Err(e) => {
                    return error_response(StatusCode::BAD_REQUEST, &format!("reading body: {e}"));
                }
            };
            let faults: FaultsFile = match serde_json::from_slice(&body) {
                Ok(faults) => faults,
                Err(e) => {
                    return error_response(StatusCode::BAD_REQUEST, &format!("faults: {e}"));
                }
            };
            match common.write_faults(&faults) {
                Ok(()) => json_response(StatusCode::OK, &faults),
                Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
            }
        }
        Method::DELETE => match common.write_faults(&FaultsFile::default()) {
            Ok(()) => json_response(StatusCode::OK, &FaultsFile::default()),
            Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
        },
        _ => not_implemented(&method, "/_emulator/faults"),
    }
}

/// The answer to a route the emulator does not know: 501 naming method and path, so an
/// unexpected request fails a test loudly.
pub fn not_implemented(method: &Method, path: &str) -> Response<Body> {
    error_response(
        StatusCode::NOT_IMPLEMENTED,
        &format!("emulator: {method} {path} is not emulated"),
    )
}

/// The token of an `Authorization: Bearer X` (or GitHub's `token X`) header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// An accepted token and what it may do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// The secret value clients send.
    pub token: String,
    /// The user it belongs to.
    pub user: String,
    /// Scopes: the Hub uses `read` and `write`; GitHub `contents:read` and `contents:write`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Organisations (Hub) the user may create repos in besides their own namespace; GitHub:
    /// owners whose repos the token may write to (an installation's account).
    #[serde(default)]
    pub orgs: Vec<String>,
    /// GitHub: `user` (default: a personal token) or `installation` (the Actions
    /// `GITHUB_TOKEN`, a GitHub App token), which reads a repository without a truthful
    /// `permissions` object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Token {
    /// Whether the token carries `scope`.
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// An installation token (GitHub).
    pub fn is_installation(&self) -> bool {
        self.kind.as_deref() == Some("installation")
    }
}

/// The body of both emulator binaries: read the `--seed` file, start a two-thread runtime, run
/// `serve` until it ends, and map the result to the exit code (errors on stderr, prefixed with
/// `name`).
pub fn run_binary<S, F, Fut>(
    name: &str,
    data: &std::path::Path,
    port: u16,
    seed: Option<&std::path::Path>,
    serve: F,
) -> std::process::ExitCode
where
    S: serde::de::DeserializeOwned,
    F: FnOnce(std::path::PathBuf, u16, Option<S>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    use anyhow::Context as _;
    let result = (|| -> anyhow::Result<()> {
        let seed: Option<S> = match seed {
            Some(path) => Some(
                crate::util::read_json(path)?
                    .with_context(|| format!("seed file {} does not exist", path.display()))?,
            ),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(serve(data.to_path_buf(), port, seed))
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{name}: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
