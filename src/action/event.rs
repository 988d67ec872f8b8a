//! The event that started the run (`$GITHUB_EVENT_PATH`): its name, and a pull request's head
//! commit, which is what the provenance of a pull request's check names.

use std::path::Path;

use crate::env;

/// Largest event payload read (`$GITHUB_EVENT_PATH`).
const MAX_EVENT_BYTES: u64 = 64 * 1024 * 1024;

/// What the event payload says, as far as the action cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// `GITHUB_EVENT_NAME`.
    pub name: Option<String>,
    /// For pull requests, the head commit (what the contributor pushed), not the merge commit
    /// `GITHUB_SHA` names.
    pub pull_request_head: Option<String>,
    /// For pull requests, whether the head is in a fork.
    pub fork: bool,
}

impl Event {
    /// Reads `GITHUB_EVENT_NAME` and the payload at `GITHUB_EVENT_PATH` (bounded; an unreadable
    /// payload only loses the pull request details).
    pub fn read(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let name = lookup(env::GITHUB_EVENT_NAME).filter(|n| !n.is_empty());
        let payload = lookup(env::GITHUB_EVENT_PATH)
            .and_then(|path| {
                crate::input::read_text(
                    Path::new(&path),
                    &path,
                    "`GITHUB_EVENT_PATH`",
                    MAX_EVENT_BYTES,
                )
                .ok()
            })
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        let pr = payload.as_ref().map(|p| &p["pull_request"]);
        let pull_request_head = pr
            .and_then(|pr| pr["head"]["sha"].as_str())
            .filter(|sha| crate::names::is_commit_id(sha))
            .map(str::to_owned);
        let fork = pr.is_some_and(|pr| {
            pr["head"]["repo"]["fork"].as_bool().unwrap_or(false)
                || pr["head"]["repo"]["full_name"] != pr["base"]["repo"]["full_name"]
        }) && pull_request_head.is_some();
        Self {
            name,
            pull_request_head,
            fork,
        }
    }
}
