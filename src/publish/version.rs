//! The release version against what is already released: tags, the Hub revision a version goes
//! to, whether it may become GitHub's "latest", and `require-increase`.
//!
//! Pure functions over data read elsewhere, so every rule is tested without a server.

use semver::Version;

use crate::error::Problem;

/// The version being released and its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseVersion {
    /// The version.
    pub version: Version,
    /// `tag-prefix` + version.
    pub tag: String,
}

impl ReleaseVersion {
    /// The version with its tag.
    pub fn new(version: Version, prefix: &str) -> Self {
        let tag = format!("{prefix}{version}");
        Self { version, tag }
    }

    /// `1.3.0-rc.1` and the like.
    pub fn is_prerelease(&self) -> bool {
        !self.version.pre.is_empty()
    }

    /// The Hub branch the release is committed to: `main` for a release, its own branch for a
    /// prerelease, which never touches `main`.
    pub fn hub_revision(&self) -> String {
        if self.is_prerelease() {
            format!("prerelease-{}", self.tag)
        } else {
            "main".to_owned()
        }
    }
}

/// The versions among `tags` that carry `prefix` followed by a semantic version, sorted.
pub fn released_versions<'a>(
    tags: impl IntoIterator<Item = &'a str>,
    prefix: &str,
) -> Vec<Version> {
    let mut versions: Vec<Version> = tags
        .into_iter()
        .filter_map(|tag| tag.strip_prefix(prefix))
        .filter_map(|bare| Version::parse(bare).ok())
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

/// The greatest released version other than `ours`.
pub fn latest_other<'a>(released: &'a [Version], ours: &Version) -> Option<&'a Version> {
    released.iter().filter(|v| *v != ours).max()
}

/// `require-increase`: the version must be greater than every other version already released
/// on `where_` (the same version is a re-run, which the idempotency checks handle).
pub fn check_increase(
    ours: &ReleaseVersion,
    released: &[Version],
    where_: &str,
) -> Result<(), Problem> {
    match latest_other(released, &ours.version) {
        Some(latest) if *latest > ours.version => Err(Problem::new(format!(
            "version `{}` is not greater than `{latest}`, already released on {where_}",
            ours.version
        ))
        .hint(
            "release a greater version, or set `version.require-increase = false` for a backport",
        )),
        _ => Ok(()),
    }
}

/// Whether GitHub should mark the release "latest": never a prerelease, and never a version
/// below an already released stable one (a backport).
pub fn is_latest(ours: &ReleaseVersion, released: &[Version]) -> bool {
    !ours.is_prerelease()
        && released
            .iter()
            .filter(|v| v.pre.is_empty())
            .all(|v| *v <= ours.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).expect("valid")
    }

    #[test]
    fn prereleases_go_to_their_own_branch_and_never_become_latest() {
        let rc = ReleaseVersion::new(v("1.3.0-rc.1"), "v");
        assert_eq!(rc.tag, "v1.3.0-rc.1");
        assert!(rc.is_prerelease());
        assert_eq!(rc.hub_revision(), "prerelease-v1.3.0-rc.1");
        assert!(!is_latest(&rc, &[]));
        let stable = ReleaseVersion::new(v("1.3.0"), "v");
        assert_eq!(stable.hub_revision(), "main");
        assert!(is_latest(&stable, &[v("1.2.0"), v("1.4.0-rc.1")]));
        assert!(!is_latest(&stable, &[v("1.4.0")]));
    }

    #[test]
    fn released_versions_read_prefixed_semver_tags_only() {
        let tags = [
            "v1.0.0",
            "v1.2.0",
            "latest",
            "v1.1",
            "model-v9.0.0",
            "v1.2.0-rc.1",
        ];
        assert_eq!(
            released_versions(tags, "v"),
            [v("1.0.0"), v("1.2.0-rc.1"), v("1.2.0")]
        );
        assert_eq!(released_versions(tags, "model-v"), [v("9.0.0")]);
    }

    #[test]
    fn require_increase_refuses_older_versions_but_not_a_rerun() {
        let released = [v("1.0.0"), v("1.2.0")];
        let ours = ReleaseVersion::new(v("1.1.0"), "v");
        let err = check_increase(&ours, &released, "the Hub").expect_err("older");
        assert_eq!(
            err.to_string(),
            "version `1.1.0` is not greater than `1.2.0`, already released on the Hub"
        );
        check_increase(&ReleaseVersion::new(v("1.2.0"), "v"), &released, "the Hub")
            .expect("the same version is a re-run");
        check_increase(&ReleaseVersion::new(v("1.3.0"), "v"), &released, "the Hub")
            .expect("greater");
        // A release candidate of an already released version is older than it.
        let rc = ReleaseVersion::new(v("1.2.0-rc.2"), "v");
        assert!(check_increase(&rc, &released, "GitHub").is_err());
    }
}
