//! The GitHub emulator's routes: repos, git refs/tags/commits, releases and assets on the API
//! listener; asset uploads on the upload listener; asset downloads (`browser_download_url`) on
//! the API listener, standing in for github.com.

// Handlers return the error response itself as `Err`, so `?` reads like the happy path; the
// response is large, but these are test-server paths where a move of it costs nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Github;
use super::state::{
    Asset, GhRepo, GithubConfig, GithubState, RefTarget, Release, TagObject, sanitize_asset_name,
};
use crate::server::{self, Token, json_response, not_implemented};
use crate::util;

type Reply = Response<Body>;
type R<T> = Result<T, Reply>;

const BODY_LIMIT: usize = 16 << 20;
const DOCS: &str = "https://docs.github.com/rest";

fn gh_error(status: StatusCode, message: &str) -> Reply {
    json_response(
        status,
        &json!({"message": message, "documentation_url": DOCS, "status": status.as_u16().to_string()}),
    )
}

fn validation(resource: &str, code: &str, field: &str, message: Option<&str>) -> Reply {
    let mut error = json!({"resource": resource, "code": code, "field": field});
    if let Some(m) = message {
        error["message"] = json!(m);
    }
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"message": "Validation Failed", "errors": [error], "documentation_url": DOCS, "status": "422"}),
    )
}

fn unprocessable(message: &str) -> Reply {
    gh_error(StatusCode::UNPROCESSABLE_ENTITY, message)
}

fn not_found() -> Reply {
    gh_error(StatusCode::NOT_FOUND, "Not Found")
}

fn json_body<T: DeserializeOwned>(body: &[u8]) -> R<T> {
    serde_json::from_slice(body).map_err(|e| {
        gh_error(
            StatusCode::BAD_REQUEST,
            &format!("Problems parsing JSON: {e}"),
        )
    })
}

struct Ctx<'a> {
    gh: &'a Github,
    method: Method,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    raw_path: String,
    body: Bytes,
}

fn caller(state: &GithubState, headers: &HeaderMap) -> R<Option<Token>> {
    let Some(value) = server::bearer(headers) else {
        if headers.contains_key(header::AUTHORIZATION) {
            return Err(gh_error(StatusCode::UNAUTHORIZED, "Bad credentials"));
        }
        return Ok(None);
    };
    state
        .tokens
        .iter()
        .find(|t| t.token == value)
        .cloned()
        .map(Some)
        .ok_or_else(|| gh_error(StatusCode::UNAUTHORIZED, "Bad credentials"))
}

fn can_push(token: Option<&Token>, repo: &GhRepo) -> bool {
    token.is_some_and(|t| {
        t.has("contents:write") && (t.user == repo.owner || t.orgs.contains(&repo.owner))
    })
}

fn can_read(token: Option<&Token>, repo: &GhRepo) -> bool {
    !repo.private
        || token.is_some_and(|t| {
            (t.has("contents:read") || t.has("contents:write"))
                && (t.user == repo.owner || t.orgs.contains(&repo.owner))
        })
}

/// The repo for reading: 404 when absent or not visible (GitHub hides private repos).
fn read_repo<'s>(state: &'s GithubState, full: &str, token: Option<&Token>) -> R<&'s GhRepo> {
    state
        .repos
        .get(full)
        .filter(|r| can_read(token, r))
        .ok_or_else(not_found)
}

/// Checks write access: 401 without a token, 403 without `contents:write`.
fn check_write(state: &GithubState, full: &str, token: Option<&Token>) -> R<()> {
    let repo = read_repo(state, full, token)?;
    let Some(token) = token else {
        return Err(gh_error(
            StatusCode::UNAUTHORIZED,
            "Requires authentication",
        ));
    };
    if !can_push(Some(token), repo) {
        return Err(gh_error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        ));
    }
    Ok(())
}

fn save(gh: &Github, state: &GithubState) -> R<()> {
    state.save(gh.data()).map_err(|e| {
        gh_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("emulator: {e:#}"),
        )
    })
}

fn user_json(gh: &Github, login: &str) -> Value {
    let api = &gh.api_url;
    let id = u64::from_str_radix(&util::sha1_hex(login.as_bytes())[..8], 16).unwrap_or(1);
    json!({
        "login": login, "id": id, "node_id": format!("U_{id}"),
        "avatar_url": format!("{api}/avatars/{login}"), "gravatar_id": "",
        "url": format!("{api}/users/{login}"), "html_url": format!("{api}/{login}"),
        "followers_url": format!("{api}/users/{login}/followers"),
        "following_url": format!("{api}/users/{login}/following{{/other_user}}"),
        "gists_url": format!("{api}/users/{login}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/users/{login}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/users/{login}/subscriptions"),
        "organizations_url": format!("{api}/users/{login}/orgs"),
        "repos_url": format!("{api}/users/{login}/repos"),
        "events_url": format!("{api}/users/{login}/events{{/privacy}}"),
        "received_events_url": format!("{api}/users/{login}/received_events"),
        "type": if login.ends_with("[bot]") { "Bot" } else { "User" },
        "site_admin": false,
    })
}

/// The repository as `GET /repos/{o}/{r}` shows it. `permissions` is the caller's view, and
/// installation tokens (Actions' `GITHUB_TOKEN`, App tokens) do not get a truthful one: none at
/// all, or `push: false` (`installation_permissions`), whatever they may write.
fn repo_json(gh: &Github, config: &GithubConfig, repo: &GhRepo, token: Option<&Token>) -> Value {
    let api = &gh.api_url;
    let full = repo.full_name();
    let push = can_push(token, repo);
    let mut value = json!({
        "id": repo.id, "node_id": format!("R_{}", repo.id), "name": repo.name, "full_name": full,
        "owner": user_json(gh, &repo.owner), "private": repo.private,
        "visibility": if repo.private { "private" } else { "public" },
        "html_url": format!("{api}/{full}"), "description": null, "fork": false,
        "url": format!("{api}/repos/{full}"),
        "releases_url": format!("{api}/repos/{full}/releases{{/id}}"),
        "git_refs_url": format!("{api}/repos/{full}/git/refs{{/sha}}"),
        "default_branch": repo.default_branch, "archived": false, "disabled": false,
        "permissions": {"admin": false, "maintain": false, "push": push, "triage": push, "pull": true},
    });
    match token {
        Some(t) if t.is_installation() && config.installation_permissions == "pull" => {
            value["permissions"] = json!({"admin": false, "maintain": false, "push": false, "triage": false, "pull": true});
        }
        Some(t) if t.is_installation() => {
            if let Some(object) = value.as_object_mut() {
                object.remove("permissions");
            }
        }
        None => {
            if let Some(object) = value.as_object_mut() {
                object.remove("permissions");
            }
        }
        Some(_) => {}
    }
    value
}

fn asset_json(gh: &Github, repo: &GhRepo, release: &Release, asset: &Asset) -> Value {
    let full = repo.full_name();
    json!({
        "url": format!("{}/repos/{full}/releases/assets/{}", gh.api_url, asset.id),
        "browser_download_url": format!("{}/{full}/releases/download/{}/{}", gh.api_url, download_tag(release), util::percent_encode(&asset.name)),
        "id": asset.id, "node_id": format!("RA_{}", asset.id), "name": asset.name, "label": asset.label,
        "state": "uploaded", "content_type": asset.content_type, "size": asset.size,
        "digest": format!("sha256:{}", asset.sha256), "download_count": 0,
        "created_at": util::iso8601_seconds(asset.created_at), "updated_at": util::iso8601_seconds(asset.created_at),
        "uploader": user_json(gh, &asset.uploader),
    })
}

/// The tag part of download URLs: the tag when published, `untagged-<hash>` for drafts.
fn download_tag(release: &Release) -> String {
    if release.draft {
        format!(
            "untagged-{}",
            &util::sha1_hex(release.id.to_string().as_bytes())[..20]
        )
    } else {
        util::percent_encode(&release.tag_name)
    }
}

fn release_json(gh: &Github, repo: &GhRepo, r: &Release) -> Value {
    let full = repo.full_name();
    let api = &gh.api_url;
    json!({
        "url": format!("{api}/repos/{full}/releases/{}", r.id),
        "html_url": format!("{api}/{full}/releases/tag/{}", download_tag(r)),
        "assets_url": format!("{api}/repos/{full}/releases/{}/assets", r.id),
        "upload_url": format!("{}/repos/{full}/releases/{}/assets{{?name,label}}", gh.uploads_url, r.id),
        "tarball_url": format!("{api}/repos/{full}/tarball/{}", r.tag_name),
        "zipball_url": format!("{api}/repos/{full}/zipball/{}", r.tag_name),
        "id": r.id, "node_id": format!("RE_{}", r.id), "tag_name": r.tag_name,
        "target_commitish": r.target_commitish, "name": r.name, "body": r.body,
        "draft": r.draft, "prerelease": r.prerelease, "immutable": r.immutable,
        "created_at": util::iso8601_seconds(r.created_at),
        "updated_at": util::iso8601_seconds(r.published_at.unwrap_or(r.created_at)),
        "published_at": r.published_at.map(util::iso8601_seconds),
        "author": user_json(gh, &r.author),
        "assets": r.assets.iter().map(|a| asset_json(gh, repo, r, a)).collect::<Vec<_>>(),
    })
}

fn ref_json(gh: &Github, repo: &GhRepo, name: &str, target: &RefTarget) -> Value {
    let full = repo.full_name();
    let kind = if target.kind == "tag" {
        "tags"
    } else {
        "commits"
    };
    json!({
        "ref": name, "node_id": format!("REF_{}", util::sha1_hex(name.as_bytes())),
        "url": format!("{}/repos/{full}/git/{name}", gh.api_url),
        "object": {"sha": target.sha, "type": target.kind, "url": format!("{}/repos/{full}/git/{kind}/{}", gh.api_url, target.sha)},
    })
}

fn tag_json(gh: &Github, repo: &GhRepo, t: &TagObject) -> Value {
    let full = repo.full_name();
    json!({
        "node_id": format!("TAG_{}", t.sha), "tag": t.tag, "sha": t.sha,
        "url": format!("{}/repos/{full}/git/tags/{}", gh.api_url, t.sha), "message": t.message,
        "tagger": {"name": t.tagger, "email": format!("{}@users.noreply.github.com", t.tagger), "date": util::iso8601_seconds(t.date)},
        "object": {"type": t.object_type, "sha": t.object_sha, "url": format!("{}/repos/{full}/git/commits/{}", gh.api_url, t.object_sha)},
        "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null},
    })
}

fn commit_json(gh: &Github, repo: &GhRepo, sha: &str) -> Value {
    let full = repo.full_name();
    let c = &repo.commits[sha];
    let person = json!({"name": repo.owner, "email": format!("{}@users.noreply.github.com", repo.owner), "date": util::iso8601_seconds(c.date)});
    json!({
        "sha": c.sha, "node_id": format!("C_{}", c.sha),
        "url": format!("{}/repos/{full}/git/commits/{}", gh.api_url, c.sha),
        "html_url": format!("{}/{full}/commit/{}", gh.api_url, c.sha),
        "author": person, "committer": person, "message": c.message,
        "tree": {"sha": util::sha1_hex(format!("tree {}", c.sha).as_bytes()), "url": format!("{}/repos/{full}/git/trees/{}", gh.api_url, c.sha)},
        "parents": c.parents.iter().map(|p| json!({"sha": p, "url": format!("{}/repos/{full}/git/commits/{p}", gh.api_url)})).collect::<Vec<_>>(),
        "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null},
    })
}

fn page_params(query: &[(String, String)]) -> (usize, usize) {
    let per_page = util::query_get(query, "per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let page = util::query_get(query, "page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    (per_page, page)
}

/// A page of `items` with GitHub's `Link` header (`next`, `last`, `first`, `prev`).
fn paginated(ctx: &Ctx<'_>, items: Vec<Value>) -> Reply {
    let (per_page, page) = page_params(&ctx.query);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut reply = json_response(StatusCode::OK, &slice);
    let url = |p: usize| {
        format!(
            "<{}{}?per_page={per_page}&page={p}>",
            ctx.gh.api_url, ctx.raw_path
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
        links.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(", "))
    {
        reply.headers_mut().insert(header::LINK, v);
    }
    reply
}

async fn context(gh: &Github, req: Request<Body>, limit: usize) -> Result<(Ctx<'_>, ()), Reply> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| gh_error(StatusCode::PAYLOAD_TOO_LARGE, &format!("request body: {e}")))?;
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    Ok((
        Ctx {
            gh,
            method: parts.method,
            headers: parts.headers,
            query: util::query_pairs(&raw_query),
            raw_path: parts.uri.path().to_owned(),
            body,
        },
        (),
    ))
}

fn segments(raw_path: &str) -> Vec<String> {
    raw_path
        .trim_start_matches('/')
        .split('/')
        .map(|s| util::percent_decode(s, false))
        .collect()
}

pub(super) async fn api(gh: Arc<Github>, req: Request<Body>) -> Reply {
    let (ctx, ()) = match context(&gh, req, BODY_LIMIT).await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    api_route(&ctx).unwrap_or_else(|e| e)
}

fn api_route(ctx: &Ctx<'_>) -> R<Reply> {
    let segs = segments(&ctx.raw_path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = ctx.method.clone();
    match (m.clone(), s.as_slice()) {
        (Method::POST, ["_emulator", "seed"]) => {
            let seed: super::GithubSeed = json_body(&ctx.body)?;
            ctx.gh
                .apply_seed(&seed)
                .map_err(|e| gh_error(StatusCode::BAD_REQUEST, &format!("seed: {e:#}")))?;
            Ok(json_response(StatusCode::OK, &json!({"ok": true})))
        }
        (Method::GET, ["_emulator", "state"]) => Ok(json_response(StatusCode::OK, &*ctx.gh.lock())),
        (Method::POST, ["_emulator", "repos", o, r, "commits"]) => {
            admin_commit(ctx, &format!("{o}/{r}"))
        }
        (Method::PATCH, ["_emulator", "repos", o, r]) => admin_repo(ctx, &format!("{o}/{r}")),
        (Method::GET, [o, r, "releases", "download", tag, name]) => {
            download(ctx, &format!("{o}/{r}"), tag, name)
        }
        (_, ["repos", o, r, rest @ ..]) => repo_route(ctx, &format!("{o}/{r}"), rest),
        _ => Ok(not_implemented(&m, &ctx.raw_path)),
    }
}

fn repo_route(ctx: &Ctx<'_>, full: &str, rest: &[&str]) -> R<Reply> {
    let m = ctx.method.clone();
    match (m.clone(), rest) {
        (Method::GET, []) => get_repo(ctx, full),
        (Method::GET, ["git", "ref", r @ ..]) if !r.is_empty() => get_ref(ctx, full, &r.join("/")),
        (Method::GET, ["git", "matching-refs", r @ ..]) => matching_refs(ctx, full, &r.join("/")),
        (Method::POST, ["git", "refs"]) => create_ref(ctx, full),
        (Method::PATCH, ["git", "refs", r @ ..]) if !r.is_empty() => {
            update_ref(ctx, full, &r.join("/"))
        }
        (Method::DELETE, ["git", "refs", r @ ..]) if !r.is_empty() => {
            delete_ref(ctx, full, &r.join("/"))
        }
        (Method::POST, ["git", "tags"]) => create_tag(ctx, full),
        (Method::GET, ["git", "tags", sha]) => get_tag(ctx, full, sha),
        (Method::GET, ["git", "commits", sha]) => get_commit(ctx, full, sha),
        (Method::GET, ["commits", r @ ..]) if !r.is_empty() => get_commit(ctx, full, &r.join("/")),
        (Method::GET, ["releases"]) => list_releases(ctx, full),
        (Method::POST, ["releases"]) => create_release(ctx, full),
        (Method::GET, ["releases", "latest"]) => latest_release(ctx, full),
        (Method::GET, ["releases", "tags", tag @ ..]) if !tag.is_empty() => {
            release_by_tag(ctx, full, &tag.join("/"))
        }
        (Method::GET, ["releases", "assets", id]) => get_asset(ctx, full, id),
        (Method::DELETE, ["releases", "assets", id]) => delete_asset(ctx, full, id),
        (Method::GET, ["releases", id]) => get_release(ctx, full, id),
        (Method::PATCH, ["releases", id]) => update_release(ctx, full, id),
        (Method::DELETE, ["releases", id]) => delete_release(ctx, full, id),
        (Method::GET, ["releases", id, "assets"]) => list_assets(ctx, full, id),
        _ => Ok(not_implemented(&m, &ctx.raw_path)),
    }
}

fn admin_commit(ctx: &Ctx<'_>, full: &str) -> R<Reply> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        branch: Option<String>,
    }
    let body: Body = json_body(&ctx.body)?;
    let mut state = ctx.gh.lock();
    let branch = match (&body.branch, state.repos.get(full)) {
        (_, None) => return Err(not_found()),
        (Some(b), _) => b.clone(),
        (None, Some(r)) => r.default_branch.clone(),
    };
    let sha = state
        .add_commit(full, &branch, body.message.as_deref().unwrap_or("commit"))
        .ok_or_else(not_found)?;
    save(ctx.gh, &state)?;
    Ok(json_response(StatusCode::CREATED, &json!({"sha": sha})))
}

fn admin_repo(ctx: &Ctx<'_>, full: &str) -> R<Reply> {
    #[derive(Deserialize)]
    struct Body {
        immutable_releases: Option<bool>,
        private: Option<bool>,
    }
    let body: Body = json_body(&ctx.body)?;
    let mut state = ctx.gh.lock();
    let repo = state.repos.get_mut(full).ok_or_else(not_found)?;
    if let Some(v) = body.immutable_releases {
        repo.immutable_releases = v;
    }
    if let Some(v) = body.private {
        repo.private = v;
    }
    save(ctx.gh, &state)?;
    Ok(json_response(StatusCode::OK, &json!({"ok": true})))
}

fn get_repo(ctx: &Ctx<'_>, full: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    Ok(json_response(
        StatusCode::OK,
        &repo_json(ctx.gh, &state.config, repo, token.as_ref()),
    ))
}

fn full_ref(r: &str) -> String {
    if r.starts_with("refs/") {
        r.to_owned()
    } else {
        format!("refs/{r}")
    }
}

fn get_ref(ctx: &Ctx<'_>, full: &str, r: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let name = full_ref(r);
    let target = repo.refs.get(&name).ok_or_else(not_found)?;
    Ok(json_response(
        StatusCode::OK,
        &ref_json(ctx.gh, repo, &name, target),
    ))
}

fn matching_refs(ctx: &Ctx<'_>, full: &str, prefix: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let prefix = full_ref(prefix);
    let items: Vec<Value> = repo
        .refs
        .iter()
        .filter(|(n, _)| n.starts_with(&prefix))
        .map(|(n, t)| ref_json(ctx.gh, repo, n, t))
        .collect();
    Ok(json_response(StatusCode::OK, &items))
}

fn valid_ref(name: &str) -> bool {
    let rest = name.strip_prefix("refs/").unwrap_or("");
    rest.contains('/')
        && !rest.ends_with('/')
        && !name.contains("..")
        && !name.contains("//")
        && !name.to_ascii_lowercase().ends_with(".lock")
        && !name
            .chars()
            .any(|c| c.is_control() || " ~^:?*[\\".contains(c))
}

fn create_ref(ctx: &Ctx<'_>, full: &str) -> R<Reply> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(rename = "ref")]
        name: String,
        sha: String,
    }
    let body: Body = json_body(&ctx.body)?;
    let mut state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    check_write(&state, full, token.as_ref())?;
    let repo = &state.repos[full];
    if !valid_ref(&body.name) {
        return Err(unprocessable(&format!(
            "{} is not a valid ref name.",
            body.name
        )));
    }
    if repo.refs.contains_key(&body.name) {
        return Err(unprocessable("Reference already exists"));
    }
    let kind = if repo.commits.contains_key(&body.sha) {
        "commit"
    } else if repo.tag_objects.contains_key(&body.sha) {
        "tag"
    } else {
        return Err(unprocessable("Object does not exist"));
    };
    if let Some(tag) = body.name.strip_prefix("refs/tags/")
        && repo.burned_tags.contains(tag)
    {
        return Err(unprocessable(&format!(
            "Cannot create ref: tag {tag} was used by an immutable release"
        )));
    }
    let target = RefTarget {
        sha: body.sha,
        kind: kind.to_owned(),
    };
    let reply = json_response(
        StatusCode::CREATED,
        &ref_json(ctx.gh, repo, &body.name, &target),
    );
    if let Some(repo) = state.repos.get_mut(full) {
        repo.refs.insert(body.name, target);
    }
    save(ctx.gh, &state)?;
    Ok(reply)
}

fn update_ref(ctx: &Ctx<'_>, full: &str, r: &str) -> R<Reply> {
    #[derive(Deserialize)]
    struct Body {
        sha: String,
        #[serde(default)]
        force: bool,
    }
    let body: Body = json_body(&ctx.body)?;
    let mut state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    check_write(&state, full, token.as_ref())?;
    let repo = &state.repos[full];
    let name = full_ref(r);
    let old = repo
        .refs
        .get(&name)
        .ok_or_else(|| unprocessable("Reference does not exist"))?;
    if let Some(tag) = name.strip_prefix("refs/tags/")
        && repo.tag_locked(tag)
    {
        return Err(unprocessable(&format!(
            "Cannot update ref: tag {tag} belongs to an immutable release"
        )));
    }
    let kind = if repo.commits.contains_key(&body.sha) {
        "commit"
    } else if repo.tag_objects.contains_key(&body.sha) {
        "tag"
    } else {
        return Err(unprocessable("Object does not exist"));
    };
    let old_commit = repo.peel(&old.sha).unwrap_or_default();
    let new_commit = repo.peel(&body.sha).unwrap_or_default();
    if !body.force && !repo.descends(&new_commit, &old_commit) {
        return Err(unprocessable("Update is not a fast forward"));
    }
    let target = RefTarget {
        sha: body.sha,
        kind: kind.to_owned(),
    };
    let reply = json_response(StatusCode::OK, &ref_json(ctx.gh, repo, &name, &target));
    if let Some(repo) = state.repos.get_mut(full) {
        repo.refs.insert(name, target);
    }
    save(ctx.gh, &state)?;
    Ok(reply)
}

fn delete_ref(ctx: &Ctx<'_>, full: &str, r: &str) -> R<Reply> {
    let mut state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    check_write(&state, full, token.as_ref())?;
    let name = full_ref(r);
    let repo = &state.repos[full];
    if let Some(tag) = name.strip_prefix("refs/tags/")
        && repo.tag_locked(tag)
    {
        return Err(unprocessable(&format!(
            "Cannot delete ref: tag {tag} belongs to an immutable release"
        )));
    }
    let removed = state
        .repos
        .get_mut(full)
        .and_then(|repo| repo.refs.remove(&name));
    if removed.is_none() {
        return Err(unprocessable("Reference does not exist"));
    }
    save(ctx.gh, &state)?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default())
}

fn create_tag(ctx: &Ctx<'_>, full: &str) -> R<Reply> {
    #[derive(Deserialize)]
    struct Body {
        tag: String,
        message: String,
        object: String,
        #[serde(rename = "type", default)]
        kind: Option<String>,
    }
    let body: Body = json_body(&ctx.body)?;
    let mut state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    check_write(&state, full, token.as_ref())?;
    let kind = body.kind.unwrap_or_else(|| "commit".to_owned());
    if kind != "commit" || !state.repos[full].commits.contains_key(&body.object) {
        return Err(validation(
            "Tag",
            "invalid",
            "object",
            Some("Object does not exist"),
        ));
    }
    let sha = state.next_sha(&format!("tag {}", body.tag));
    let tag = TagObject {
        sha: sha.clone(),
        tag: body.tag,
        message: body.message,
        object_sha: body.object,
        object_type: kind,
        date: util::now_secs(),
        tagger: token.map(|t| t.user).unwrap_or_default(),
    };
    let repo = state.repos.get_mut(full).ok_or_else(not_found)?;
    repo.tag_objects.insert(sha.clone(), tag);
    let reply = json_response(
        StatusCode::CREATED,
        &tag_json(ctx.gh, repo, &repo.tag_objects[&sha]),
    );
    save(ctx.gh, &state)?;
    Ok(reply)
}

fn get_tag(ctx: &Ctx<'_>, full: &str, sha: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let tag = repo.tag_objects.get(sha).ok_or_else(not_found)?;
    Ok(json_response(StatusCode::OK, &tag_json(ctx.gh, repo, tag)))
}

fn get_commit(ctx: &Ctx<'_>, full: &str, rev: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let sha = repo
        .resolve_commit(rev)
        .ok_or_else(|| unprocessable(&format!("No commit found for SHA: {rev}")))?;
    Ok(json_response(
        StatusCode::OK,
        &commit_json(ctx.gh, repo, &sha),
    ))
}

fn visible_release<'s>(repo: &'s GhRepo, id: &str, push: bool) -> R<&'s Release> {
    id.parse::<u64>()
        .ok()
        .and_then(|id| repo.releases.get(&id))
        .filter(|r| push || !r.draft)
        .ok_or_else(not_found)
}

fn sorted_releases(repo: &GhRepo, push: bool) -> Vec<&Release> {
    let mut releases: Vec<&Release> = repo
        .releases
        .values()
        .filter(|r| push || !r.draft)
        .collect();
    releases.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
    releases
}

fn list_releases(ctx: &Ctx<'_>, full: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let push = can_push(token.as_ref(), repo);
    let items = sorted_releases(repo, push)
        .into_iter()
        .map(|r| release_json(ctx.gh, repo, r))
        .collect();
    Ok(paginated(ctx, items))
}

fn get_release(ctx: &Ctx<'_>, full: &str, id: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let release = visible_release(repo, id, can_push(token.as_ref(), repo))?;
    Ok(json_response(
        StatusCode::OK,
        &release_json(ctx.gh, repo, release),
    ))
}

fn release_by_tag(ctx: &Ctx<'_>, full: &str, tag: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    // Drafts are invisible here, as on GitHub.
    let release = repo
        .releases
        .values()
        .find(|r| !r.draft && r.tag_name == tag)
        .ok_or_else(not_found)?;
    Ok(json_response(
        StatusCode::OK,
        &release_json(ctx.gh, repo, release),
    ))
}

fn latest_release(ctx: &Ctx<'_>, full: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let release = repo
        .latest
        .and_then(|id| repo.releases.get(&id))
        .filter(|r| !r.draft && !r.prerelease)
        .ok_or_else(not_found)?;
    Ok(json_response(
        StatusCode::OK,
        &release_json(ctx.gh, repo, release),
    ))
}

#[derive(Deserialize, Default)]
struct ReleaseBody {
    tag_name: Option<String>,
    target_commitish: Option<String>,
    name: Option<String>,
    body: Option<String>,
    draft: Option<bool>,
    prerelease: Option<bool>,
    /// `"true"`, `"false"` or `"legacy"` (a JSON bool is accepted too).
    make_latest: Option<Value>,
}

fn make_latest(value: Option<&Value>) -> R<Option<bool>> {
    match value {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "legacy" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(other) => Err(validation(
            "Release",
            "invalid",
            "make_latest",
            Some(&format!(
                "make_latest must be true, false or legacy, not {other}"
            )),
        )),
    }
}

/// Publishes `release` (id) of `full`: creates its tag from `target_commitish` when missing,
/// locks it if the repo has immutable releases, and updates latest.
fn publish(state: &mut GithubState, full: &str, id: u64, latest: Option<bool>) -> R<()> {
    let repo = state.repos.get_mut(full).ok_or_else(not_found)?;
    let release = repo.releases.get(&id).ok_or_else(not_found)?.clone();
    let tag_ref = format!("refs/tags/{}", release.tag_name);
    if !repo.refs.contains_key(&tag_ref) {
        let commit = repo
            .resolve_commit(&release.target_commitish)
            .ok_or_else(|| validation("Release", "invalid", "target_commitish", None))?;
        repo.refs.insert(
            tag_ref,
            RefTarget {
                sha: commit,
                kind: "commit".to_owned(),
            },
        );
    }
    let immutable = repo.immutable_releases;
    if let Some(r) = repo.releases.get_mut(&id) {
        r.draft = false;
        r.published_at = Some(util::now_secs());
        r.immutable = immutable;
    }
    if !release.prerelease && latest != Some(false) {
        repo.latest = Some(id);
    }
    Ok(())
}

fn tag_taken(repo: &GhRepo, tag: &str, except: Option<u64>) -> R<()> {
    if repo.burned_tags.contains(tag) {
        return Err(validation(
            "Release",
            "custom",
            "tag_name",
            Some("tag_name was used by an immutable release"),
        ));
    }
    if repo
        .releases
        .values()
        .any(|r| !r.draft && r.tag_name == tag && Some(r.id) != except)
    {
        return Err(validation("Release", "already_exists", "tag_name", None));
    }
    Ok(())
}

fn create_release(ctx: &Ctx<'_>, full: &str) -> R<Reply> {
    let body: ReleaseBody = json_body(&ctx.body)?;
    let mut state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    check_write(&state, full, token.as_ref())?;
    let repo = &state.repos[full];
    let Some(tag) = body.tag_name.clone().filter(|t| !t.is_empty()) else {
        return Err(validation("Release", "missing_field", "tag_name", None));
    };
    let draft = body.draft.unwrap_or(false);
    // Drafts may share a tag (GitHub allows several drafts per tag); a burned tag is never
    // usable again.
    if !draft || repo.burned_tags.contains(&tag) {
        tag_taken(repo, &tag, None)?;
    }
    let target = body
        .target_commitish
        .clone()
        .unwrap_or_else(|| repo.default_branch.clone());
    if !repo.refs.contains_key(&format!("refs/tags/{tag}"))
        && repo.resolve_commit(&target).is_none()
    {
        return Err(validation("Release", "invalid", "target_commitish", None));
    }
    let latest = make_latest(body.make_latest.as_ref())?;
    let id = state.next_id();
    let author = token.map(|t| t.user).unwrap_or_default();
    let repo = state.repos.get_mut(full).ok_or_else(not_found)?;
    repo.releases.insert(
        id,
        Release {
            id,
            tag_name: tag,
            target_commitish: target,
            name: body.name,
            body: body.body,
            draft: true,
            prerelease: body.prerelease.unwrap_or(false),
            author,
            created_at: util::now_secs(),
            published_at: None,
            immutable: false,
            assets: Vec::new(),
        },
    );
    if !draft {
        publish(&mut state, full, id, latest)?;
    }
    save(ctx.gh, &state)?;
    let repo = &state.repos[full];
    Ok(json_response(
        StatusCode::CREATED,
        &release_json(ctx.gh, repo, &repo.releases[&id]),
    ))
}

fn update_release(ctx: &Ctx<'_>, full: &str, id: &str) -> R<Reply> {
    let body: ReleaseBody = json_body(&ctx.body)?;
    let mut state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    check_write(&state, full, token.as_ref())?;
    let repo = &state.repos[full];
    let release = visible_release(repo, id, true)?.clone();
    let latest = make_latest(body.make_latest.as_ref())?;
    if release.immutable {
        let retag = body
            .tag_name
            .as_ref()
            .is_some_and(|t| *t != release.tag_name);
        let retarget = body
            .target_commitish
            .as_ref()
            .is_some_and(|t| *t != release.target_commitish);
        if retag
            || retarget
            || body.draft == Some(true)
            || body.prerelease.is_some_and(|p| p != release.prerelease)
        {
            return Err(unprocessable(
                "Cannot modify the tag, target or state of an immutable release",
            ));
        }
    }
    let tag = body
        .tag_name
        .clone()
        .unwrap_or_else(|| release.tag_name.clone());
    let publishing = release.draft && body.draft == Some(false);
    if publishing || (!release.draft && tag != release.tag_name) {
        tag_taken(repo, &tag, Some(release.id))?;
    }
    let repo = state.repos.get_mut(full).ok_or_else(not_found)?;
    if let Some(r) = repo.releases.get_mut(&release.id) {
        r.tag_name = tag;
        if let Some(t) = body.target_commitish {
            r.target_commitish = t;
        }
        if body.name.is_some() {
            r.name = body.name;
        }
        if body.body.is_some() {
            r.body = body.body;
        }
        if let Some(p) = body.prerelease {
            r.prerelease = p;
        }
        if body.draft == Some(true) && !r.draft {
            r.draft = true;
            r.published_at = None;
        }
    }
    if publishing {
        publish(&mut state, full, release.id, latest)?;
    } else if let Some(repo) = state.repos.get_mut(full) {
        let r = &repo.releases[&release.id];
        if latest == Some(true) && !r.draft && !r.prerelease {
            repo.latest = Some(release.id);
        } else if repo.latest == Some(release.id)
            && (r.draft || r.prerelease || latest == Some(false))
        {
            repo.recompute_latest();
        }
    }
    save(ctx.gh, &state)?;
    let repo = &state.repos[full];
    Ok(json_response(
        StatusCode::OK,
        &release_json(ctx.gh, repo, &repo.releases[&release.id]),
    ))
}

fn delete_release(ctx: &Ctx<'_>, full: &str, id: &str) -> R<Reply> {
    let mut state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    check_write(&state, full, token.as_ref())?;
    let release = visible_release(&state.repos[full], id, true)?.clone();
    let repo = state.repos.get_mut(full).ok_or_else(not_found)?;
    repo.releases.remove(&release.id);
    if release.immutable {
        repo.burned_tags.insert(release.tag_name.clone());
    }
    if repo.latest == Some(release.id) {
        repo.recompute_latest();
    }
    for asset in &release.assets {
        let _ = std::fs::remove_file(ctx.gh.data().join("assets").join(asset.id.to_string()));
    }
    save(ctx.gh, &state)?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default())
}

fn list_assets(ctx: &Ctx<'_>, full: &str, id: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let release = visible_release(repo, id, can_push(token.as_ref(), repo))?;
    let items = release
        .assets
        .iter()
        .map(|a| asset_json(ctx.gh, repo, release, a))
        .collect();
    Ok(paginated(ctx, items))
}

fn find_asset<'s>(repo: &'s GhRepo, id: &str, push: bool) -> R<(&'s Release, &'s Asset)> {
    let id: u64 = id.parse().map_err(|_| not_found())?;
    repo.releases
        .values()
        .filter(|r| push || !r.draft)
        .find_map(|r| r.assets.iter().find(|a| a.id == id).map(|a| (r, a)))
        .ok_or_else(not_found)
}

fn get_asset(ctx: &Ctx<'_>, full: &str, id: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let (release, asset) = find_asset(repo, id, can_push(token.as_ref(), repo))?;
    let wants_bytes = ctx
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/octet-stream"));
    if wants_bytes {
        let bytes = std::fs::read(ctx.gh.data().join("assets").join(asset.id.to_string()))
            .map_err(|_| not_found())?;
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Body::from(bytes))
            .unwrap_or_default());
    }
    Ok(json_response(
        StatusCode::OK,
        &asset_json(ctx.gh, repo, release, asset),
    ))
}

fn delete_asset(ctx: &Ctx<'_>, full: &str, id: &str) -> R<Reply> {
    let mut state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    check_write(&state, full, token.as_ref())?;
    let (release, asset) = find_asset(&state.repos[full], id, true)?;
    if release.immutable {
        return Err(unprocessable(
            "Cannot delete an asset of an immutable release",
        ));
    }
    let (release_id, asset_id) = (release.id, asset.id);
    if let Some(r) = state
        .repos
        .get_mut(full)
        .and_then(|repo| repo.releases.get_mut(&release_id))
    {
        r.assets.retain(|a| a.id != asset_id);
    }
    let _ = std::fs::remove_file(ctx.gh.data().join("assets").join(asset_id.to_string()));
    save(ctx.gh, &state)?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default())
}

fn download(ctx: &Ctx<'_>, full: &str, tag: &str, name: &str) -> R<Reply> {
    let state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    let repo = read_repo(&state, full, token.as_ref())?;
    let push = can_push(token.as_ref(), repo);
    let release = repo
        .releases
        .values()
        .find(|r| download_tag(r) == util::percent_encode(tag) && (push || !r.draft))
        .ok_or_else(not_found)?;
    let asset = release
        .assets
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(not_found)?;
    let bytes = std::fs::read(ctx.gh.data().join("assets").join(asset.id.to_string()))
        .map_err(|_| not_found())?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, asset.content_type.as_str())
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(Body::from(bytes))
        .unwrap_or_default())
}

/// The upload origin: `POST /repos/{o}/{r}/releases/{id}/assets?name=&label=`.
pub(super) async fn uploads(gh: Arc<Github>, req: Request<Body>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let segs = segments(&path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (full, id) = match (&method, s.as_slice()) {
        (&Method::POST, ["repos", o, r, "releases", id, "assets"]) => {
            (format!("{o}/{r}"), (*id).to_owned())
        }
        _ => return not_implemented(&method, &path),
    };
    // Refuse by Content-Length before reading the body.
    let limit = gh.lock().config.max_asset_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return validation(
            "ReleaseAsset",
            "custom",
            "size",
            Some(&format!("size must be at most {limit} bytes")),
        );
    }
    let body_limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let (ctx, ()) = match context(&gh, req, body_limit).await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    upload(&ctx, &full, &id).unwrap_or_else(|e| e)
}

fn upload(ctx: &Ctx<'_>, full: &str, id: &str) -> R<Reply> {
    let mut state = ctx.gh.lock();
    let token = caller(&state, &ctx.headers)?;
    check_write(&state, full, token.as_ref())?;
    let release = visible_release(&state.repos[full], id, true)?.clone();
    if release.immutable {
        return Err(unprocessable(
            "Cannot upload assets to an immutable release.",
        ));
    }
    let Some(raw_name) = util::query_get(&ctx.query, "name").filter(|n| !n.is_empty()) else {
        return Err(validation("ReleaseAsset", "missing_field", "name", None));
    };
    let name = sanitize_asset_name(raw_name);
    if name.is_empty() {
        return Err(validation("ReleaseAsset", "invalid", "name", None));
    }
    if release.assets.iter().any(|a| a.name == name) {
        return Err(validation("ReleaseAsset", "already_exists", "name", None));
    }
    if release.assets.len() >= state.config.max_assets {
        return Err(validation(
            "ReleaseAsset",
            "custom",
            "name",
            Some(&format!(
                "a release may have at most {} assets",
                state.config.max_assets
            )),
        ));
    }
    if ctx.body.is_empty() {
        return Err(validation(
            "ReleaseAsset",
            "invalid",
            "size",
            Some("an asset may not be empty"),
        ));
    }
    let asset_id = state.next_id();
    let path = ctx.gh.data().join("assets").join(asset_id.to_string());
    util::write_atomically(&path, &ctx.body).map_err(|e| {
        gh_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("emulator: {e:#}"),
        )
    })?;
    let asset = Asset {
        id: asset_id,
        name,
        label: util::query_get(&ctx.query, "label").map(str::to_owned),
        content_type: ctx
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned(),
        size: ctx.body.len() as u64,
        sha256: util::sha256_hex(&ctx.body),
        uploader: token.map(|t| t.user).unwrap_or_default(),
        created_at: util::now_secs(),
    };
    let repo = state.repos.get_mut(full).ok_or_else(not_found)?;
    let r = repo.releases.get_mut(&release.id).ok_or_else(not_found)?;
    r.assets.push(asset.clone());
    save(ctx.gh, &state)?;
    let repo = &state.repos[full];
    Ok(json_response(
        StatusCode::CREATED,
        &asset_json(ctx.gh, repo, &repo.releases[&release.id], &asset),
    ))
}
