//! The Hub emulator's routes: API (repos, info, refs, tree, paths-info, commits, preupload,
//! LFS batch, Xet tokens, commit, tags, branches, validate-yaml, whoami), resolve and the CDN.

// Handlers return the error response itself as `Err`, so `?` reads like the happy path; the
// response is large, but these are test-server paths where a move of it costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::state::{
    self, Commit, DEFAULT_GITATTRIBUTES, Entry, HubState, Repo, RepoType, Tag, lfs_pointer,
};
use super::{Hub, HubSeed, LFS_POINTER_MISSING};
use crate::server::{self, Token, error_response, json_response, not_implemented};
use crate::{shard, util};

type Reply = Response<Body>;
type R<T> = Result<T, Reply>;

/// Largest request body (a commit with inline files).
const BODY_LIMIT: usize = 256 << 20;
/// Largest number of operations in one commit.
const MAX_COMMIT_OPS: usize = 100_000;
/// Tree page size without and with `expand` (as on the real Hub).
const TREE_PAGE: usize = 1000;
const TREE_PAGE_EXPANDED: usize = 50;
/// Commits listing page size.
const COMMITS_PAGE: usize = 50;
/// The real Hub's refusal of binary inline files (huggingface/xet-core#569).
pub const BINARY_REJECTED: &str = "Your push was rejected because it contains binary files. Please use https://huggingface.co/docs/hub/xet to store binary files.";
/// Message of a commit whose `parentCommit` is not the branch head.
pub const STALE_PARENT: &str = "A commit has happened since. Please refresh and try again.";

struct Ctx<'a> {
    hub: &'a Hub,
    method: Method,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    raw_path: String,
    raw_query: String,
    body: Bytes,
}

fn err(status: StatusCode, message: &str) -> Reply {
    error_response(status, message)
}

/// An error with the `X-Error-Code` Python's `hf_raise_for_status` maps to exception types.
fn err_code(status: StatusCode, code: &'static str, message: &str) -> Reply {
    let mut response = error_response(status, message);
    response
        .headers_mut()
        .insert("x-error-code", HeaderValue::from_static(code));
    response
}

fn repo_not_found(status: StatusCode) -> Reply {
    err_code(
        status,
        "RepoNotFound",
        "Repository not found. Check the repo id, and that your token may read it.",
    )
}

fn revision_not_found(rev: &str) -> Reply {
    err_code(
        StatusCode::NOT_FOUND,
        "RevisionNotFound",
        &format!("Invalid rev id: {rev}"),
    )
}

fn entry_not_found(path: &str) -> Reply {
    err_code(
        StatusCode::NOT_FOUND,
        "EntryNotFound",
        &format!("Entry not found: {path}"),
    )
}

fn json_body<T: DeserializeOwned>(body: &[u8]) -> R<T> {
    serde_json::from_slice(body)
        .map_err(|e| err(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))
}

fn save(hub: &Hub, state: &HubState) -> R<()> {
    state.save(hub.data()).map_err(|e| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("emulator: {e:#}"),
        )
    })
}

/// The caller's token: `None` without `Authorization`, 401 for an unknown one.
fn caller(state: &HubState, headers: &HeaderMap) -> R<Option<Token>> {
    let Some(value) = server::bearer(headers) else {
        if headers.contains_key(header::AUTHORIZATION) {
            return Err(err(
                StatusCode::UNAUTHORIZED,
                "Invalid credentials in Authorization header",
            ));
        }
        return Ok(None);
    };
    state
        .tokens
        .iter()
        .find(|t| t.token == value)
        .cloned()
        .map(Some)
        .ok_or_else(|| {
            err(
                StatusCode::UNAUTHORIZED,
                "Invalid credentials in Authorization header",
            )
        })
}

fn need_token(state: &HubState, headers: &HeaderMap) -> R<Token> {
    caller(state, headers)?.ok_or_else(|| {
        err(
            StatusCode::UNAUTHORIZED,
            "Invalid username or password: this call needs a token (Authorization: Bearer ...)",
        )
    })
}

fn member(token: &Token, namespace: &str) -> bool {
    token.user == namespace || token.orgs.iter().any(|o| o == namespace)
}

fn check_write(token: &Token, namespace: &str) -> R<()> {
    if !token.has("write") {
        return Err(err(
            StatusCode::FORBIDDEN,
            "You have read access but not the required permissions for this operation: the token lacks the write scope.",
        ));
    }
    if !member(token, namespace) {
        return Err(err(
            StatusCode::FORBIDDEN,
            &format!("You don't have the rights to write to the namespace \"{namespace}\""),
        ));
    }
    Ok(())
}

/// The repo, if the caller may read it (private repos: 401 anonymously, 404 to outsiders,
/// like the real Hub, which does not reveal them).
fn readable<'s>(state: &'s HubState, kind: RepoType, id: &str, who: Option<&Token>) -> R<&'s Repo> {
    let repo = state
        .repos
        .get(&state::repo_key(kind, id))
        .ok_or_else(|| repo_not_found(StatusCode::NOT_FOUND))?;
    match who {
        None if repo.private || !state.config.anonymous_reads => {
            Err(repo_not_found(StatusCode::UNAUTHORIZED))
        }
        Some(t) if repo.private && !member(t, repo.namespace()) => {
            Err(repo_not_found(StatusCode::NOT_FOUND))
        }
        _ => Ok(repo),
    }
}

/// Checks that the caller may write to the repo; returns its token.
fn writable(state: &HubState, kind: RepoType, id: &str, headers: &HeaderMap) -> R<Token> {
    let token = need_token(state, headers)?;
    readable(state, kind, id, Some(&token))?;
    check_write(&token, id.split('/').next().unwrap_or_default())?;
    Ok(token)
}

fn decode_segments(raw_path: &str) -> Vec<String> {
    raw_path
        .trim_start_matches('/')
        .split('/')
        .map(|s| util::percent_decode(s, false))
        .collect()
}

pub(super) async fn dispatch(hub: Arc<Hub>, req: Request<Body>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(e) => return err(StatusCode::PAYLOAD_TOO_LARGE, &format!("request body: {e}")),
    };
    let raw_path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let ctx = Ctx {
        hub: &hub,
        method: parts.method.clone(),
        headers: parts.headers,
        query: util::query_pairs(&raw_query),
        raw_path: raw_path.clone(),
        raw_query,
        body,
    };
    route(&ctx).unwrap_or_else(|e| e)
}

fn route(ctx: &Ctx<'_>) -> R<Reply> {
    let segs = decode_segments(&ctx.raw_path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = &ctx.method;
    match s.as_slice() {
        ["_emulator", "seed"] if m == Method::POST => seed(ctx),
        ["_emulator", "state"] if m == Method::GET => {
            Ok(json_response(StatusCode::OK, &*ctx.hub.lock()))
        }
        ["api", "whoami-v2"] if m == Method::GET => whoami(ctx),
        ["api", "repos", "create"] if m == Method::POST => create_repo(ctx),
        ["api", "repos", "delete"] if m == Method::DELETE => delete_repo(ctx),
        ["api", "validate-yaml"] if m == Method::POST => validate_yaml(ctx),
        ["api", t, ns, name, rest @ ..] if RepoType::from_plural(t).is_some() => {
            let kind = RepoType::from_plural(t).unwrap_or(RepoType::Model);
            repo_api(ctx, kind, &format!("{ns}/{name}"), rest)
        }
        _ => {
            if let Some(reply) = lfs_or_resolve(ctx, &s) {
                return reply;
            }
            Ok(not_implemented(m, &ctx.raw_path))
        }
    }
}

fn lfs_or_resolve(ctx: &Ctx<'_>, s: &[&str]) -> Option<R<Reply>> {
    let (kind, rest) = match s.first().and_then(|p| RepoType::from_plural(p)) {
        Some(kind @ (RepoType::Dataset | RepoType::Space)) if s.len() > 3 => (kind, &s[1..]),
        _ => (RepoType::Model, s),
    };
    match rest {
        [ns, name, "info", "lfs", "objects", "batch"] if ctx.method == Method::POST => {
            let name = name.strip_suffix(".git")?;
            Some(lfs_batch(ctx, kind, &format!("{ns}/{name}")))
        }
        [ns, name, "resolve", rev, path @ ..]
            if !path.is_empty() && (ctx.method == Method::GET || ctx.method == Method::HEAD) =>
        {
            Some(resolve(
                ctx,
                kind,
                &format!("{ns}/{name}"),
                rev,
                &path.join("/"),
            ))
        }
        _ => None,
    }
}

fn repo_api(ctx: &Ctx<'_>, kind: RepoType, id: &str, rest: &[&str]) -> R<Reply> {
    let m = &ctx.method;
    // A revision sent without percent-encoding spreads over several segments.
    let joined = |from: usize| rest[from..].join("/");
    match rest {
        [] if m == Method::GET => info(ctx, kind, id, None),
        ["revision", _, ..] if m == Method::GET => info(ctx, kind, id, Some(&joined(1))),
        ["refs"] if m == Method::GET => refs(ctx, kind, id),
        ["tree", rev, path @ ..] if m == Method::GET => tree(ctx, kind, id, rev, &path.join("/")),
        ["paths-info", _, ..] if m == Method::POST => paths_info(ctx, kind, id, &joined(1)),
        ["commits", _, ..] if m == Method::GET => commits(ctx, kind, id, &joined(1)),
        ["preupload", _, ..] if m == Method::POST => preupload(ctx, kind, id, &joined(1)),
        ["xet-write-token", _, ..] if m == Method::GET => {
            xet_token(ctx, kind, id, &joined(1), true)
        }
        ["xet-read-token", _, ..] if m == Method::GET => {
            xet_token(ctx, kind, id, &joined(1), false)
        }
        ["commit", _, ..] if m == Method::POST => commit(ctx, kind, id, &joined(1)),
        ["tag", _, ..] if m == Method::POST => create_tag(ctx, kind, id, &joined(1)),
        ["tag", _, ..] if m == Method::DELETE => delete_tag(ctx, kind, id, &joined(1)),
        ["branch", _, ..] if m == Method::POST => create_branch(ctx, kind, id, &joined(1)),
        ["branch", _, ..] if m == Method::DELETE => delete_branch(ctx, kind, id, &joined(1)),
        _ => Ok(not_implemented(m, &ctx.raw_path)),
    }
}

fn seed(ctx: &Ctx<'_>) -> R<Reply> {
    let seed: HubSeed = json_body(&ctx.body)?;
    ctx.hub
        .apply_seed(&seed)
        .map_err(|e| err(StatusCode::BAD_REQUEST, &format!("seed: {e:#}")))?;
    Ok(json_response(StatusCode::OK, &json!({"ok": true})))
}

fn whoami(ctx: &Ctx<'_>) -> R<Reply> {
    let state = ctx.hub.lock();
    let token = need_token(&state, &ctx.headers)?;
    let role = if token.has("write") { "write" } else { "read" };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "type": "user",
            "id": util::sha1_hex(token.user.as_bytes())[..24].to_owned(),
            "name": token.user,
            "fullname": token.user,
            "email": null,
            "emailVerified": false,
            "isPro": false,
            "canPay": false,
            "orgs": token.orgs.iter().map(|o| json!({"type": "org", "name": o, "fullname": o})).collect::<Vec<_>>(),
            "auth": {"type": "access_token", "accessToken": {"displayName": "emulator", "role": role}},
        }),
    ))
}

/// Creates `id` with the Hub's initial commit (a `.gitattributes`); `state` must not hold it.
pub(super) fn create_repo_in(
    state: &mut HubState,
    kind: RepoType,
    id: &str,
    private: bool,
    author: &str,
) {
    let key = state::repo_key(kind, id);
    let cas = state.next_id(&format!("cas\0{key}"))[..16].to_owned();
    state.repos.insert(
        key.clone(),
        Repo {
            id: id.to_owned(),
            kind,
            private,
            created_at: util::now_secs(),
            branches: BTreeMap::new(),
            tags: BTreeMap::new(),
            commits: BTreeMap::new(),
            cas,
            xet_files: BTreeMap::new(),
        },
    );
    let mut files = BTreeMap::new();
    files.insert(
        ".gitattributes".to_owned(),
        Entry::regular(DEFAULT_GITATTRIBUTES.as_bytes()),
    );
    let commit = state.make_commit(&key, None, "initial commit", "", author, files);
    if let Some(repo) = state.repos.get_mut(&key) {
        repo.branches.insert("main".to_owned(), commit);
    }
}

fn valid_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 96
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.'])
        && !name.contains("--")
        && !name.contains("..")
}

#[derive(Deserialize)]
struct RepoBody {
    name: String,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// A Space's SDK, which the Hub requires when a Space is created.
    #[serde(default)]
    sdk: Option<String>,
}

/// The SDKs a Space may be created with.
const SPACE_SDKS: [&str; 4] = ["gradio", "docker", "static", "streamlit"];

fn repo_body(body: &[u8]) -> R<(RepoType, String, RepoBody)> {
    let body: RepoBody = json_body(body)?;
    let kind = match body.kind.as_deref() {
        None => RepoType::Model,
        Some(k) => RepoType::from_singular(k)
            .ok_or_else(|| err(StatusCode::BAD_REQUEST, &format!("unknown repo type {k:?}")))?,
    };
    let (ns, name) = match (&body.organization, body.name.split_once('/')) {
        (Some(org), None) => (Some(org.clone()), body.name.clone()),
        (None, Some((ns, name))) => (Some(ns.to_owned()), name.to_owned()),
        (None, None) => (None, body.name.clone()),
        (Some(_), Some(_)) => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "name must not hold a / when organization is set",
            ));
        }
    };
    Ok((kind, ns.unwrap_or_default() + "/" + &name, body))
}

fn create_repo(ctx: &Ctx<'_>) -> R<Reply> {
    let mut state = ctx.hub.lock();
    let token = need_token(&state, &ctx.headers)?;
    let (kind, id, body) = repo_body(&ctx.body)?;
    let id = if id.starts_with('/') {
        format!("{}{id}", token.user)
    } else {
        id
    };
    let (ns, name) = id.split_once('/').unwrap_or_default();
    if !valid_repo_name(name) || !valid_repo_name(ns) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            &format!(
                "Repository name {id:?} is invalid: use letters, digits, '-', '_' and '.', no '--' or '..', at most 96 characters"
            ),
        ));
    }
    check_write(&token, ns)?;
    if kind == RepoType::Space && !body.sdk.as_deref().is_some_and(|s| SPACE_SDKS.contains(&s)) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            &format!(
                "A Space needs an `sdk`, one of {}; got {:?}",
                SPACE_SDKS.join(", "),
                body.sdk.as_deref().unwrap_or("none")
            ),
        ));
    }
    let url = format!("{}/{}{id}", ctx.hub.api_url, kind.url_prefix());
    if state.repos.contains_key(&state::repo_key(kind, &id)) {
        let mut reply = json_response(
            StatusCode::CONFLICT,
            &json!({"error": format!("You already created this {} repo", kind.singular()), "url": url}),
        );
        reply.headers_mut().insert(
            "x-error-message",
            HeaderValue::from_static("You already created this repo"),
        );
        return Ok(reply);
    }
    let private = body.private.unwrap_or(false)
        || matches!(body.visibility.as_deref(), Some("private" | "protected"));
    create_repo_in(&mut state, kind, &id, private, &token.user);
    save(ctx.hub, &state)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"url": url, "name": id, "id": util::sha1_hex(id.as_bytes())[..24].to_owned()}),
    ))
}

fn delete_repo(ctx: &Ctx<'_>) -> R<Reply> {
    let mut state = ctx.hub.lock();
    let token = need_token(&state, &ctx.headers)?;
    let (kind, id, _) = repo_body(&ctx.body)?;
    let id = if id.starts_with('/') {
        format!("{}{id}", token.user)
    } else {
        id
    };
    readable(&state, kind, &id, Some(&token))?;
    check_write(&token, id.split('/').next().unwrap_or_default())?;
    let removed = state.repos.remove(&state::repo_key(kind, &id));
    save(ctx.hub, &state)?;
    // Its Xet objects go with it (a folder of its own; never the shared root of old states).
    if let Some(repo) = removed.filter(|r| !r.cas.is_empty()) {
        let _ = std::fs::remove_dir_all(ctx.hub.cas_dir(&repo));
    }
    Ok(json_response(StatusCode::OK, &json!({})))
}

/// The YAML front matter of a model card, if it has one.
fn front_matter(text: &str) -> Option<&str> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let end = rest
        .match_indices("\n---")
        .find(|(i, _)| {
            let after = &rest[i + 4..];
            after.is_empty() || after.starts_with('\n') || after.starts_with("\r\n")
        })
        .map(|(i, _)| i)?;
    Some(&rest[..end])
}

fn card_yaml(text: &str) -> Result<Option<Value>, String> {
    let Some(yaml) = front_matter(text) else {
        return Ok(None);
    };
    let value: Value = serde_yaml_ng::from_str(yaml).map_err(|e| format!("YAML metadata: {e}"))?;
    match value {
        Value::Object(_) => Ok(Some(value)),
        Value::Null => Ok(None),
        _ => Err("YAML metadata must be a mapping".to_owned()),
    }
}

fn validate_yaml(ctx: &Ctx<'_>) -> R<Reply> {
    #[derive(Deserialize)]
    struct Body {
        content: String,
    }
    {
        let state = ctx.hub.lock();
        caller(&state, &ctx.headers)?;
    }
    let body: Body = json_body(&ctx.body)?;
    match card_yaml(&body.content) {
        Ok(_) => Ok(json_response(
            StatusCode::OK,
            &json!({"errors": [], "warnings": []}),
        )),
        Err(message) => Ok(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"errors": [{"message": message}]}),
        )),
    }
}

fn card_data(hub: &Hub, commit: &Commit) -> Option<Value> {
    let entry = commit.files.get("README.md").filter(|e| !e.lfs)?;
    let bytes = std::fs::read(hub.blob_path(&entry.sha256)).ok()?;
    card_yaml(&String::from_utf8_lossy(&bytes)).ok().flatten()
}

fn info(ctx: &Ctx<'_>, kind: RepoType, id: &str, rev: Option<&str>) -> R<Reply> {
    let state = ctx.hub.lock();
    let who = caller(&state, &ctx.headers)?;
    let repo = readable(&state, kind, id, who.as_ref())?;
    let rev = rev.unwrap_or("main");
    let commit_id = repo.resolve(rev).ok_or_else(|| revision_not_found(rev))?;
    let commit = &repo.commits[&commit_id];
    let blobs = util::query_flag(&ctx.query, "blobs");
    let siblings: Vec<Value> = commit
        .files
        .iter()
        .map(|(path, e)| {
            let mut s = json!({"rfilename": path});
            if blobs {
                s["size"] = json!(e.size);
                s["blobId"] = json!(e.oid);
                if e.lfs {
                    s["lfs"] = json!({"sha256": e.sha256, "size": e.size, "pointerSize": lfs_pointer(&e.sha256, e.size).len()});
                }
            }
            s
        })
        .collect();
    let mut value = json!({
        "_id": util::sha1_hex(state::repo_key(kind, id).as_bytes())[..24].to_owned(),
        "id": repo.id,
        "author": repo.namespace(),
        "sha": commit.id,
        "lastModified": util::iso8601(commit.date),
        "createdAt": util::iso8601(repo.created_at),
        "private": repo.private,
        "disabled": false,
        "gated": false,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "usedStorage": commit.files.values().map(|e| e.size).sum::<u64>(),
        "xetEnabled": true,
    });
    if kind == RepoType::Model {
        value["modelId"] = json!(repo.id);
    }
    if let Some(card) = card_data(ctx.hub, commit) {
        value["cardData"] = card;
    }
    Ok(json_response(StatusCode::OK, &value))
}

fn refs(ctx: &Ctx<'_>, kind: RepoType, id: &str) -> R<Reply> {
    let state = ctx.hub.lock();
    let who = caller(&state, &ctx.headers)?;
    let repo = readable(&state, kind, id, who.as_ref())?;
    let branches: Vec<Value> = repo
        .branches
        .iter()
        .map(|(name, c)| json!({"name": name, "ref": format!("refs/heads/{name}"), "targetCommit": c}))
        .collect();
    let tags: Vec<Value> = repo
        .tags
        .iter()
        .map(|(name, t)| json!({"name": name, "ref": format!("refs/tags/{name}"), "targetCommit": t.commit}))
        .collect();
    let mut value = json!({"branches": branches, "tags": tags, "converts": []});
    if util::query_flag(&ctx.query, "include_prs") {
        value["pullRequests"] = json!([]);
    }
    Ok(json_response(StatusCode::OK, &value))
}

fn last_commit_json(repo: &Repo, head: &str, path: &str) -> Value {
    repo.last_change(head, path).map_or(
        Value::Null,
        |c| json!({"id": c.id, "title": c.title, "date": util::iso8601(c.date)}),
    )
}

fn file_json(path: &str, e: &Entry) -> Value {
    let mut v = json!({"type": "file", "oid": e.oid, "size": e.size, "path": path});
    if e.lfs {
        v["lfs"] = json!({"oid": e.sha256, "size": e.size, "pointerSize": lfs_pointer(&e.sha256, e.size).len()});
    }
    if let Some(hash) = &e.xet_hash {
        v["xetHash"] = json!(hash);
    }
    v
}

fn dir_oid(files: &BTreeMap<String, Entry>, dir: &str) -> String {
    let prefix = format!("{dir}/");
    let mut listing = String::new();
    for (p, e) in files.iter().filter(|(p, _)| p.starts_with(&prefix)) {
        listing.push_str(p);
        listing.push(' ');
        listing.push_str(&e.oid);
        listing.push('\n');
    }
    util::sha1_hex(listing.as_bytes())
}

/// Tree entries under `base` (`""` = root): `(path, Some(file) | None for a directory)`.
fn tree_entries<'c>(
    files: &'c BTreeMap<String, Entry>,
    base: &str,
    recursive: bool,
) -> Vec<(String, Option<&'c Entry>)> {
    let prefix = if base.is_empty() {
        String::new()
    } else {
        format!("{base}/")
    };
    let mut dirs = BTreeSet::new();
    let mut out = Vec::new();
    for (path, entry) in files.range(prefix.clone()..) {
        let Some(rel) = path.strip_prefix(&prefix) else {
            break;
        };
        let parts: Vec<&str> = rel.split('/').collect();
        let depth = if recursive {
            parts.len() - 1
        } else {
            1.min(parts.len() - 1)
        };
        for i in 1..=depth {
            dirs.insert(format!("{prefix}{}", parts[..i].join("/")));
        }
        if recursive || parts.len() == 1 {
            out.push((path.clone(), Some(entry)));
        }
    }
    out.extend(dirs.into_iter().map(|d| (d, None)));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn next_link(ctx: &Ctx<'_>, key: &str, value: usize) -> String {
    let mut pairs: Vec<String> = ctx
        .raw_query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(key))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("{key}={value}"));
    format!(
        "<{}{}?{}>; rel=\"next\"",
        ctx.hub.api_url,
        ctx.raw_path,
        pairs.join("&")
    )
}

fn tree(ctx: &Ctx<'_>, kind: RepoType, id: &str, rev: &str, base: &str) -> R<Reply> {
    let state = ctx.hub.lock();
    let who = caller(&state, &ctx.headers)?;
    let repo = readable(&state, kind, id, who.as_ref())?;
    let head = repo.resolve(rev).ok_or_else(|| revision_not_found(rev))?;
    let commit = &repo.commits[&head];
    let base = base.trim_matches('/');
    let recursive = util::query_flag(&ctx.query, "recursive");
    let expand = util::query_flag(&ctx.query, "expand");
    let entries = tree_entries(&commit.files, base, recursive);
    if !base.is_empty() && entries.is_empty() {
        return Err(entry_not_found(base));
    }
    let page = if expand {
        TREE_PAGE_EXPANDED
    } else {
        TREE_PAGE
    };
    let start: usize = util::query_get(&ctx.query, "cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let items: Vec<Value> = entries
        .iter()
        .skip(start)
        .take(page)
        .map(|(path, entry)| {
            let mut v = match entry {
                Some(e) => file_json(path, e),
                None => json!({"type": "directory", "oid": dir_oid(&commit.files, path), "size": 0, "path": path}),
            };
            if expand {
                v["lastCommit"] = last_commit_json(repo, &head, path);
            }
            v
        })
        .collect();
    let mut reply = json_response(StatusCode::OK, &items);
    if start + page < entries.len()
        && let Ok(link) = HeaderValue::from_str(&next_link(ctx, "cursor", start + page))
    {
        reply.headers_mut().insert(header::LINK, link);
    }
    Ok(reply)
}

fn paths_info(ctx: &Ctx<'_>, kind: RepoType, id: &str, rev: &str) -> R<Reply> {
    let form = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (paths, expand) = if form {
        let pairs = util::query_pairs(&String::from_utf8_lossy(&ctx.body));
        let paths: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == "paths" || k == "paths[]")
            .map(|(_, v)| v.clone())
            .collect();
        (paths, util::query_flag(&pairs, "expand"))
    } else {
        #[derive(Deserialize)]
        struct Body {
            paths: Vec<String>,
            #[serde(default)]
            expand: Option<Value>,
        }
        let body: Body = json_body(&ctx.body)?;
        let expand = matches!(body.expand, Some(Value::Bool(true)))
            || matches!(&body.expand, Some(Value::String(s)) if s == "true" || s == "True");
        (body.paths, expand)
    };
    let state = ctx.hub.lock();
    let who = caller(&state, &ctx.headers)?;
    let repo = readable(&state, kind, id, who.as_ref())?;
    let head = repo.resolve(rev).ok_or_else(|| revision_not_found(rev))?;
    let commit = &repo.commits[&head];
    let mut out = Vec::new();
    for path in paths.iter().take(10_000) {
        let path = path.trim_matches('/');
        let mut v = if let Some(e) = commit.files.get(path) {
            file_json(path, e)
        } else if commit
            .files
            .keys()
            .any(|p| p.starts_with(&format!("{path}/")))
        {
            json!({"type": "directory", "oid": dir_oid(&commit.files, path), "size": 0, "path": path})
        } else {
            continue;
        };
        if expand {
            v["lastCommit"] = last_commit_json(repo, &head, path);
        }
        out.push(v);
    }
    Ok(json_response(StatusCode::OK, &out))
}

fn commits(ctx: &Ctx<'_>, kind: RepoType, id: &str, rev: &str) -> R<Reply> {
    let state = ctx.hub.lock();
    let who = caller(&state, &ctx.headers)?;
    let repo = readable(&state, kind, id, who.as_ref())?;
    let head = repo.resolve(rev).ok_or_else(|| revision_not_found(rev))?;
    let history = repo.history(&head);
    let page: usize = util::query_get(&ctx.query, "p")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let items: Vec<Value> = history
        .iter()
        .skip(page.saturating_mul(COMMITS_PAGE))
        .take(COMMITS_PAGE)
        .map(|c| {
            let message = if c.description.is_empty() {
                c.title.clone()
            } else {
                format!("{}\n\n{}", c.title, c.description)
            };
            json!({
                "id": c.id,
                "title": c.title,
                "message": message,
                "authors": [{"user": c.author, "avatar": null}],
                "date": util::iso8601(c.date),
                "parents": c.parents,
            })
        })
        .collect();
    let mut reply = json_response(StatusCode::OK, &items);
    if (page + 1).saturating_mul(COMMITS_PAGE) < history.len()
        && let Ok(link) = HeaderValue::from_str(&next_link(ctx, "p", page + 1))
    {
        reply.headers_mut().insert(header::LINK, link);
    }
    Ok(reply)
}

fn gitattributes(hub: &Hub, commit: &Commit) -> String {
    commit
        .files
        .get(".gitattributes")
        .filter(|e| !e.lfs)
        .and_then(|e| std::fs::read(hub.blob_path(&e.sha256)).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn branch_head(repo: &Repo, rev: &str) -> R<(String, String)> {
    let branch = rev.strip_prefix("refs/heads/").unwrap_or(rev);
    match repo.branches.get(branch) {
        Some(head) => Ok((branch.to_owned(), head.clone())),
        None if repo.resolve(rev).is_some() => Err(err(
            StatusCode::BAD_REQUEST,
            &format!("Invalid rev id: {rev} is not a branch; commits go to branches"),
        )),
        None => Err(revision_not_found(rev)),
    }
}

fn preupload(ctx: &Ctx<'_>, kind: RepoType, id: &str, rev: &str) -> R<Reply> {
    #[derive(Deserialize)]
    struct File {
        path: String,
        size: u64,
        #[serde(default)]
        sample: String,
    }
    #[derive(Deserialize)]
    struct Body {
        files: Vec<File>,
    }
    let body: Body = json_body(&ctx.body)?;
    let state = ctx.hub.lock();
    writable(&state, kind, id, &ctx.headers)?;
    let repo = &state.repos[&state::repo_key(kind, id)];
    let head = repo.resolve(rev).ok_or_else(|| revision_not_found(rev))?;
    let commit = &repo.commits[&head];
    let attributes = gitattributes(ctx.hub, commit);
    let mut out = Vec::new();
    for file in body.files.iter().take(MAX_COMMIT_OPS) {
        let sample = base64::engine::general_purpose::STANDARD
            .decode(&file.sample)
            .map_err(|e| {
                err(
                    StatusCode::BAD_REQUEST,
                    &format!("{}: sample is not base64: {e}", file.path),
                )
            })?;
        let lfs = file.size > 0
            && (file.size >= 10 << 20
                || state::lfs_by_attributes(&attributes, &file.path)
                || util::looks_binary(&sample));
        let oid = commit.files.get(&file.path).map(|e| {
            if e.lfs {
                e.sha256.clone()
            } else {
                e.oid.clone()
            }
        });
        out.push(json!({
            "path": file.path,
            "uploadMode": if lfs { "lfs" } else { "regular" },
            "shouldIgnore": false,
            "oid": oid,
        }));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"files": out, "commitOid": head}),
    ))
}

fn lfs_batch(ctx: &Ctx<'_>, kind: RepoType, id: &str) -> R<Reply> {
    #[derive(Deserialize)]
    struct Object {
        oid: String,
        size: u64,
    }
    #[derive(Deserialize)]
    struct Body {
        operation: String,
        #[serde(default)]
        transfers: Vec<String>,
        objects: Vec<Object>,
    }
    let body: Body = json_body(&ctx.body)?;
    let state = ctx.hub.lock();
    if body.operation == "upload" {
        writable(&state, kind, id, &ctx.headers)?;
    } else {
        let who = caller(&state, &ctx.headers)?;
        readable(&state, kind, id, who.as_ref())?;
    }
    let xet = state.config.lfs_transfer == "xet" && body.transfers.iter().any(|t| t == "xet");
    let objects: Vec<Value> = body
        .objects
        .iter()
        .take(MAX_COMMIT_OPS)
        .map(|o| {
            if xet {
                json!({"oid": o.oid, "size": o.size})
            } else {
                json!({"oid": o.oid, "size": o.size, "error": {"code": 422, "message": "basic LFS transfers are not emulated; upload through Xet"}})
            }
        })
        .collect();
    let mut reply = json_response(
        StatusCode::OK,
        &json!({"transfer": if xet { "xet" } else { "basic" }, "objects": objects, "hash_algo": "sha256"}),
    );
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.git-lfs+json"),
    );
    Ok(reply)
}

fn xet_token(ctx: &Ctx<'_>, kind: RepoType, id: &str, rev: &str, write: bool) -> R<Reply> {
    let mut state = ctx.hub.lock();
    if write {
        writable(&state, kind, id, &ctx.headers)?;
    } else {
        let who = caller(&state, &ctx.headers)?;
        readable(&state, kind, id, who.as_ref())?;
    }
    let repo = &state.repos[&state::repo_key(kind, id)];
    if write {
        branch_head(repo, rev)?;
    } else if repo.resolve(rev).is_none() {
        return Err(revision_not_found(rev));
    }
    let cas_dir = ctx.hub.cas_dir(repo);
    let access = format!("xet_{}", state.next_id("xet-token"));
    save(ctx.hub, &state)?;
    std::fs::create_dir_all(&cas_dir).map_err(|e| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("emulator: creating {}: {e}", cas_dir.display()),
        )
    })?;
    let exp = util::now_secs() + 3600;
    let cas_url = format!("local://{}", cas_dir.display());
    let mut reply = json_response(
        StatusCode::OK,
        &json!({"accessToken": access, "exp": exp, "casUrl": cas_url}),
    );
    for (name, value) in [
        ("x-xet-cas-url", cas_url),
        ("x-xet-access-token", access),
        ("x-xet-token-expiration", exp.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            reply.headers_mut().insert(name, value);
        }
    }
    Ok(reply)
}

fn valid_repo_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 1024
        && !path.starts_with('/')
        && !path.ends_with('/')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && path.split('/').next() != Some(".git")
        && !path.contains(['\0', '\\'])
}

#[derive(Deserialize)]
struct Line {
    key: String,
    value: Value,
}

fn field<'v>(value: &'v Value, key: &str, line: usize) -> R<&'v str> {
    value.get(key).and_then(Value::as_str).ok_or_else(|| {
        err(
            StatusCode::BAD_REQUEST,
            &format!("commit line {line}: missing string field {key:?}"),
        )
    })
}

fn commit(ctx: &Ctx<'_>, kind: RepoType, id: &str, rev: &str) -> R<Reply> {
    if util::query_flag(&ctx.query, "create_pr") {
        return Ok(not_implemented(
            &ctx.method,
            &format!("{}?create_pr=1", ctx.raw_path),
        ));
    }
    let text = std::str::from_utf8(&ctx.body)
        .map_err(|_| err(StatusCode::BAD_REQUEST, "commit body is not UTF-8"))?;
    let mut lines = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        if lines.len() > MAX_COMMIT_OPS {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "too many operations in one commit",
            ));
        }
        let parsed: Line = serde_json::from_str(line).map_err(|e| {
            err(
                StatusCode::BAD_REQUEST,
                &format!("commit line {}: {e}", i + 1),
            )
        })?;
        lines.push((i + 1, parsed));
    }
    let Some((_, header)) = lines.first().filter(|(_, l)| l.key == "header") else {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "the first commit line must be the header",
        ));
    };
    let summary = header
        .value
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if summary.trim().is_empty() {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "the commit summary must not be empty",
        ));
    }
    let description = header
        .value
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let parent_commit = header
        .value
        .get("parentCommit")
        .and_then(Value::as_str)
        .map(str::to_owned);

    let mut state = ctx.hub.lock();
    let token = writable(&state, kind, id, &ctx.headers)?;
    let key = state::repo_key(kind, id);
    let (branch, head) = branch_head(&state.repos[&key], rev)?;
    if let Some(parent) = &parent_commit
        && *parent != head
    {
        let status = StatusCode::from_u16(state.config.stale_parent_status)
            .unwrap_or(StatusCode::PRECONDITION_FAILED);
        return Err(err(status, STALE_PARENT));
    }
    let config = state.config.clone();
    let mut files = state.repos[&key].commits[&head].files.clone();
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut rescanned = false;
    // LFS paths naming objects this repo does not have (yet), and objects still propagating.
    let mut missing: Vec<String> = Vec::new();
    let mut propagating: Vec<String> = Vec::new();
    for (n, line) in &lines[1..] {
        let v = &line.value;
        match line.key.as_str() {
            "file" => {
                let path = field(v, "path", *n)?;
                if !valid_repo_path(path) {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        &format!("invalid path {path:?}"),
                    ));
                }
                let content = field(v, "content", *n)?;
                let bytes = match v
                    .get("encoding")
                    .and_then(Value::as_str)
                    .unwrap_or("base64")
                {
                    "base64" => base64::engine::general_purpose::STANDARD
                        .decode(content)
                        .map_err(|e| {
                            err(
                                StatusCode::BAD_REQUEST,
                                &format!("{path}: content is not base64: {e}"),
                            )
                        })?,
                    "utf-8" | "utf8" => content.as_bytes().to_vec(),
                    other => {
                        return Err(err(
                            StatusCode::BAD_REQUEST,
                            &format!("{path}: unknown encoding {other:?}"),
                        ));
                    }
                };
                if config.reject_binary_inline && util::looks_binary(&bytes) {
                    return Err(err(StatusCode::BAD_REQUEST, BINARY_REJECTED));
                }
                if bytes.len() as u64 > config.max_inline_bytes {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "Your push was rejected because {path} is larger than {} bytes. Please use https://huggingface.co/docs/hub/xet to store large files.",
                            config.max_inline_bytes
                        ),
                    ));
                }
                let entry = Entry::regular(&bytes);
                blobs.push((entry.sha256.clone(), bytes));
                files.insert(path.to_owned(), entry);
            }
            "lfsFile" => {
                let path = field(v, "path", *n)?;
                if !valid_repo_path(path) {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        &format!("invalid path {path:?}"),
                    ));
                }
                let oid = field(v, "oid", *n)?.to_ascii_lowercase();
                if v.get("algo")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a != "sha256")
                {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        &format!("{path}: only sha256 LFS oids are supported"),
                    ));
                }
                let size = v.get("size").and_then(Value::as_u64).ok_or_else(|| {
                    err(
                        StatusCode::BAD_REQUEST,
                        &format!("commit line {n}: missing size"),
                    )
                })?;
                // Unknown, or known with another size: a new shard may have arrived in this
                // repo's CAS folder since the last scan. Objects first seen now wait out the
                // propagation lag.
                let known = state.repos[&key]
                    .xet_files
                    .get(&oid)
                    .is_some_and(|x| x.size == size);
                if !known && !rescanned {
                    rescanned = true;
                    let found = shard::scan(&ctx.hub.cas_dir(&state.repos[&key]));
                    let lag = state.config.lfs_propagation_lag;
                    if let Some(repo) = state.repos.get_mut(&key) {
                        for (sha, file) in found {
                            let fresh = !repo.xet_files.contains_key(&sha);
                            let entry = repo.xet_files.entry(sha).or_insert(state::XetFile {
                                xet_hash: file.xet_hash.clone(),
                                size: file.size,
                                pending: 0,
                            });
                            entry.xet_hash = file.xet_hash;
                            entry.size = file.size;
                            if fresh {
                                entry.pending = lag;
                            }
                        }
                    }
                }
                let Some(xet) = state.repos[&key].xet_files.get(&oid).cloned() else {
                    missing.push(format!("{path} (sha256:{oid})"));
                    continue;
                };
                if xet.pending > 0 {
                    propagating.push(oid.clone());
                    missing.push(format!("{path} (sha256:{oid})"));
                    continue;
                }
                if xet.size != size {
                    return Err(err(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &format!(
                            "{path}: size {size} does not match the uploaded object ({} bytes)",
                            xet.size
                        ),
                    ));
                }
                files.insert(path.to_owned(), Entry::xet(&oid, size, &xet.xet_hash));
            }
            "deletedFile" => {
                let path = field(v, "path", *n)?;
                if files.remove(path).is_none() {
                    return Err(entry_not_found(path));
                }
            }
            "deletedFolder" => {
                let path = field(v, "path", *n)?.trim_end_matches('/');
                let prefix = format!("{path}/");
                let before = files.len();
                files.retain(|p, _| !p.starts_with(&prefix));
                if files.len() == before {
                    return Err(entry_not_found(path));
                }
            }
            "copyFile" => {
                let path = field(v, "path", *n)?;
                let src = field(v, "srcPath", *n)?;
                let repo = &state.repos[&key];
                let src_commit = match v.get("srcRevision").and_then(Value::as_str) {
                    Some(r) => repo.resolve(r).ok_or_else(|| revision_not_found(r))?,
                    None => head.clone(),
                };
                let entry = repo.commits[&src_commit]
                    .files
                    .get(src)
                    .cloned()
                    .ok_or_else(|| entry_not_found(src))?;
                if !valid_repo_path(path) {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        &format!("invalid path {path:?}"),
                    ));
                }
                files.insert(path.to_owned(), entry);
            }
            "header" => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    &format!("commit line {n}: a second header"),
                ));
            }
            other => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    &format!("commit line {n}: unknown operation {other:?}"),
                ));
            }
        }
    }
    if !missing.is_empty() {
        // Each refusal brings a propagating object one commit closer to being seen.
        if let Some(repo) = state.repos.get_mut(&key) {
            for oid in &propagating {
                if let Some(x) = repo.xet_files.get_mut(oid) {
                    x.pending = x.pending.saturating_sub(1);
                }
            }
        }
        save(ctx.hub, &state)?;
        return Err(err(
            StatusCode::BAD_REQUEST,
            &format!(
                "{LFS_POINTER_MISSING} Offending file(s): {}",
                missing.join(", ")
            ),
        ));
    }
    for (sha, bytes) in &blobs {
        let path = ctx.hub.blob_path(sha);
        if !path.exists() {
            util::write_atomically(&path, bytes).map_err(|e| {
                err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("emulator: {e:#}"),
                )
            })?;
        }
    }
    let new = state.make_commit(&key, Some(head), &summary, &description, &token.user, files);
    if let Some(repo) = state.repos.get_mut(&key) {
        repo.branches.insert(branch, new.clone());
    }
    save(ctx.hub, &state)?;
    let url = format!("{}/{}{id}/commit/{new}", ctx.hub.api_url, kind.url_prefix());
    Ok(json_response(
        StatusCode::OK,
        &json!({"success": true, "commitOid": new, "commitUrl": url, "commitMessage": summary, "commitDescription": description}),
    ))
}

fn valid_ref_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.contains("..")
        && !name.contains("//")
        && !name.to_ascii_lowercase().ends_with(".lock")
        && !name
            .chars()
            .any(|c| c.is_control() || " ~^:?*[\\".contains(c))
}

fn create_tag(ctx: &Ctx<'_>, kind: RepoType, id: &str, rev: &str) -> R<Reply> {
    #[derive(Deserialize)]
    struct Body {
        tag: String,
        #[serde(default)]
        message: Option<String>,
    }
    let body: Body = json_body(&ctx.body)?;
    let mut state = ctx.hub.lock();
    writable(&state, kind, id, &ctx.headers)?;
    let key = state::repo_key(kind, id);
    let repo = &state.repos[&key];
    let commit = repo.resolve(rev).ok_or_else(|| revision_not_found(rev))?;
    if !valid_ref_name(&body.tag) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            &format!("Invalid tag name {:?}", body.tag),
        ));
    }
    if repo.tags.contains_key(&body.tag) {
        return Err(err(
            StatusCode::CONFLICT,
            &format!("Tag {} already exists", body.tag),
        ));
    }
    if let Some(repo) = state.repos.get_mut(&key) {
        repo.tags.insert(
            body.tag,
            Tag {
                commit,
                message: body.message.filter(|m| !m.is_empty()),
            },
        );
    }
    save(ctx.hub, &state)?;
    Ok(json_response(StatusCode::OK, &json!({})))
}

fn delete_tag(ctx: &Ctx<'_>, kind: RepoType, id: &str, tag: &str) -> R<Reply> {
    let mut state = ctx.hub.lock();
    writable(&state, kind, id, &ctx.headers)?;
    let key = state::repo_key(kind, id);
    let tag = tag.strip_prefix("refs/tags/").unwrap_or(tag);
    let removed = state.repos.get_mut(&key).and_then(|r| r.tags.remove(tag));
    if removed.is_none() {
        return Err(revision_not_found(tag));
    }
    save(ctx.hub, &state)?;
    Ok(json_response(StatusCode::OK, &json!({})))
}

fn create_branch(ctx: &Ctx<'_>, kind: RepoType, id: &str, branch: &str) -> R<Reply> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        #[serde(default)]
        starting_point: Option<String>,
        #[serde(default)]
        empty_branch: bool,
        #[serde(default)]
        overwrite: bool,
    }
    let body: Body = if ctx.body.is_empty() {
        Body::default()
    } else {
        json_body(&ctx.body)?
    };
    let mut state = ctx.hub.lock();
    let token = writable(&state, kind, id, &ctx.headers)?;
    let key = state::repo_key(kind, id);
    let repo = &state.repos[&key];
    if !valid_ref_name(branch) || branch.starts_with("refs/") {
        return Err(err(
            StatusCode::BAD_REQUEST,
            &format!("Invalid branch name {branch:?}"),
        ));
    }
    if repo.branches.contains_key(branch) && !body.overwrite {
        return Err(err(
            StatusCode::CONFLICT,
            &format!("Reference refs/heads/{branch} already exists"),
        ));
    }
    let target = if body.empty_branch {
        None
    } else {
        let start = body.starting_point.as_deref().unwrap_or("main");
        Some(
            repo.resolve(start)
                .ok_or_else(|| revision_not_found(start))?,
        )
    };
    let target = match target {
        Some(t) => t,
        None => state.make_commit(
            &key,
            None,
            "initial commit",
            "",
            &token.user,
            BTreeMap::new(),
        ),
    };
    if let Some(repo) = state.repos.get_mut(&key) {
        repo.branches.insert(branch.to_owned(), target);
    }
    save(ctx.hub, &state)?;
    Ok(json_response(StatusCode::OK, &json!({})))
}

fn delete_branch(ctx: &Ctx<'_>, kind: RepoType, id: &str, branch: &str) -> R<Reply> {
    let mut state = ctx.hub.lock();
    writable(&state, kind, id, &ctx.headers)?;
    let key = state::repo_key(kind, id);
    let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    if branch == "main" {
        return Err(err(
            StatusCode::FORBIDDEN,
            "Cannot delete the default branch main",
        ));
    }
    let removed = state
        .repos
        .get_mut(&key)
        .and_then(|r| r.branches.remove(branch));
    if removed.is_none() {
        return Err(revision_not_found(branch));
    }
    save(ctx.hub, &state)?;
    Ok(json_response(StatusCode::OK, &json!({})))
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
                .any(|t| t == etag || t == "*")
        })
}

/// `Range: bytes=a-b` / `a-` / `-n` against `len`: `Ok(None)` for no (or a multi-) range,
/// `Err(())` for an unsatisfiable one.
fn parse_range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len.saturating_sub(1))
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        (start, end)
    };
    if len == 0 || start > end || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Serves `bytes` with `ETag`, `If-None-Match` and single `Range` support.
fn serve_bytes(method: &Method, headers: &HeaderMap, bytes: &[u8], etag: &str) -> Reply {
    let quoted = format!("\"{etag}\"");
    let mut builder = Response::builder()
        .header(header::ETAG, &quoted)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    if etag_matches(headers, etag) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let len = bytes.len() as u64;
    let (status, slice) = match parse_range(headers, len) {
        Ok(None) => (StatusCode::OK, bytes),
        Ok(Some((start, end))) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (
                StatusCode::PARTIAL_CONTENT,
                &bytes[start as usize..=end as usize],
            )
        }
        Err(()) => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_default();
        }
    };
    let builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, slice.len());
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(slice.to_vec())
    };
    builder.body(body).unwrap_or_default()
}

fn resolve(ctx: &Ctx<'_>, kind: RepoType, id: &str, rev: &str, path: &str) -> R<Reply> {
    let state = ctx.hub.lock();
    let who = caller(&state, &ctx.headers)?;
    let repo = readable(&state, kind, id, who.as_ref())?;
    let commit_id = repo.resolve(rev).ok_or_else(|| revision_not_found(rev))?;
    let commit = &repo.commits[&commit_id];
    let Some(entry) = commit.files.get(path) else {
        let mut reply = entry_not_found(path);
        if let Ok(v) = HeaderValue::from_str(&commit_id) {
            reply.headers_mut().insert("x-repo-commit", v);
        }
        return Ok(reply);
    };
    let mut reply = if entry.lfs {
        let location = format!("{}/_cdn/{}", ctx.hub.cdn_url, entry.sha256);
        let refresh = format!(
            "{}/api/{}/{id}/xet-read-token/{commit_id}",
            ctx.hub.api_url,
            kind.plural()
        );
        let mut builder = Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, location)
            .header(header::ETAG, format!("\"{}\"", entry.sha256))
            .header("x-linked-etag", format!("\"{}\"", entry.sha256))
            .header("x-linked-size", entry.size.to_string())
            .header(header::CONTENT_LENGTH, 0);
        if let Some(hash) = &entry.xet_hash {
            builder = builder
                .header("x-xet-hash", hash.as_str())
                .header(header::LINK, format!("<{refresh}>; rel=\"xet-auth\""))
                .header("x-xet-refresh-route", refresh);
        }
        builder.body(Body::empty()).unwrap_or_default()
    } else {
        let bytes = std::fs::read(ctx.hub.blob_path(&entry.sha256)).map_err(|e| {
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("emulator: blob of {path}: {e}"),
            )
        })?;
        serve_bytes(&ctx.method, &ctx.headers, &bytes, &entry.oid)
    };
    if let Ok(v) = HeaderValue::from_str(&commit_id) {
        reply.headers_mut().insert("x-repo-commit", v);
    }
    cors(&ctx.headers, &mut reply);
    Ok(reply)
}

/// A browser's cross-origin read of a resolve URL (or of the CDN it redirects to) is allowed, as
/// the Hub allows it (transformers.js and the demo Space fetch models this way): only when the
/// request carries an `Origin`, any origin, without credentials, with the Hub's own headers
/// readable. A fetch from a page whose server sent no such headers fails in the browser.
fn cors(request: &HeaderMap, reply: &mut Reply) {
    if !request.contains_key(header::ORIGIN) {
        return;
    }
    let headers = reply.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "X-Repo-Commit, X-Request-Id, X-Error-Code, X-Error-Message, ETag, Link, \
             Accept-Ranges, Content-Range, X-Linked-Size, X-Linked-ETag, X-Xet-Hash",
        ),
    );
}

/// The CDN origin: `GET`/`HEAD /_cdn/<sha256>` serves the bytes the emulator holds (regular
/// files, and Xet files whose bytes were registered); anything else answers like a storage
/// bucket, with an XML error page.
pub(super) fn cdn(hub: &Hub, req: &Request<Body>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if method != Method::GET && method != Method::HEAD {
        return not_implemented(&method, &path);
    }
    let Some(sha) = path.strip_prefix("/_cdn/").filter(|s| util::is_hex(s, 64)) else {
        return not_implemented(&method, &path);
    };
    match std::fs::read(hub.blob_path(sha)).ok().or_else(|| hub.xet_bytes(sha)) {
        Some(bytes) => {
            let mut reply = serve_bytes(&method, req.headers(), &bytes, sha);
            cors(req.headers(), &mut reply);
            reply
        }
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "application/xml")
            .body(Body::from(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>{sha}</Key></Error>"
            )))
            .unwrap_or_default(),
    }
}
