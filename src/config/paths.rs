//! Path confinement: every path in release.toml stays inside the repository.
//!
//! The repository root is the enclosing Git work tree, or the configuration's directory when
//! there is none. A configured path is refused when it is absolute, when `..` walks above the
//! root, or when it (or a folder on the way) is a symlink whose target lies outside the root.
//! Bundle paths (`output = ...`) are checked lexically the same way against the bundle root.

use std::path::{Component, Path, PathBuf};

/// Where configured paths are resolved from and confined to.
#[derive(Debug, Clone)]
pub struct PathRoots {
    /// Directory holding release.toml; relative paths start here. Canonical.
    pub config_dir: PathBuf,
    /// The repository root that no path may leave. Canonical.
    pub repo_root: PathBuf,
}

impl PathRoots {
    /// Finds the repository root for a configuration directory.
    pub fn discover(config_dir: &Path) -> std::io::Result<Self> {
        let config_dir = config_dir.canonicalize()?;
        let repo_root = config_dir
            .ancestors()
            .find(|dir| dir.join(".git").exists())
            .unwrap_or(&config_dir)
            .to_path_buf();
        Ok(Self {
            config_dir,
            repo_root,
        })
    }

    /// Resolves a configured path to an absolute one inside the repository.
    ///
    /// The path need not exist; when it does, symlinks along it are followed and must stay inside.
    pub fn resolve(&self, configured: &str) -> Result<PathBuf, PathError> {
        if configured.is_empty() {
            return Err(PathError::Empty);
        }
        let path = Path::new(configured);
        if path.is_absolute() || configured.starts_with('\\') || has_drive_prefix(configured) {
            return Err(PathError::Absolute);
        }
        let joined = normalize(&self.config_dir.join(path)).ok_or(PathError::Escapes)?;
        if !joined.starts_with(&self.repo_root) {
            return Err(PathError::Escapes);
        }
        // Follow symlinks on the longest prefix that exists.
        let existing = joined
            .ancestors()
            .find(|p| p.symlink_metadata().is_ok())
            .unwrap_or(&self.repo_root);
        if let Ok(real) = existing.canonicalize()
            && !real.starts_with(&self.repo_root)
        {
            return Err(PathError::SymlinkOut(real));
        }
        Ok(joined)
    }

    /// The path relative to the repository root, `/`-separated, for messages and manifests.
    pub fn display(&self, absolute: &Path) -> String {
        absolute
            .strip_prefix(&self.repo_root)
            .unwrap_or(absolute)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Why a configured path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The value is `""`.
    #[error("is empty")]
    Empty,
    /// `/etc/passwd`, `C:\...`.
    #[error("is absolute; paths are relative to the folder of release.toml")]
    Absolute,
    /// `../../elsewhere`.
    #[error("leaves the repository")]
    Escapes,
    /// A symlink whose target is outside the repository.
    #[error("is a symlink that leads out of the repository (to `{}`)", .0.display())]
    SymlinkOut(PathBuf),
}

/// Checks a path inside the release bundle (`output = ...`): relative, no `..`, no empty parts.
pub fn check_bundle_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.starts_with('/') || path.starts_with('\\') || has_drive_prefix(path) {
        return Err(PathError::Absolute);
    }
    if path
        .split(['/', '\\'])
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(PathError::Escapes);
    }
    Ok(())
}

fn has_drive_prefix(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Removes `.` and resolves `..` lexically; `None` when `..` climbs above the filesystem root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> (tempfile::TempDir, PathRoots) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("repo/.git")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("repo/models")).expect("mkdir");
        std::fs::write(dir.path().join("outside.bin"), b"secret").expect("write");
        let roots = PathRoots::discover(&dir.path().join("repo/models")).expect("roots");
        (dir, roots)
    }

    #[test]
    fn relative_paths_resolve_from_the_config_dir() {
        let (_dir, roots) = roots();
        let resolved = roots.resolve("weights/a.pt").expect("inside");
        assert_eq!(resolved, roots.config_dir.join("weights/a.pt"));
        assert_eq!(roots.display(&resolved), "models/weights/a.pt");
        // `..` that stays inside the repository is fine.
        assert!(roots.resolve("../README.md").is_ok());
    }

    #[test]
    fn absolute_and_escaping_paths_are_refused() {
        let (_dir, roots) = roots();
        assert_eq!(roots.resolve("/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(roots.resolve("C:\\x"), Err(PathError::Absolute));
        assert_eq!(roots.resolve("../../outside.bin"), Err(PathError::Escapes));
        assert_eq!(roots.resolve("a/../../../x"), Err(PathError::Escapes));
        assert_eq!(roots.resolve(""), Err(PathError::Empty));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_that_lead_out_are_refused() {
        let (dir, roots) = roots();
        std::os::unix::fs::symlink(
            dir.path().join("outside.bin"),
            roots.config_dir.join("link"),
        )
        .expect("symlink");
        std::os::unix::fs::symlink(dir.path(), roots.config_dir.join("dirlink")).expect("symlink");
        assert!(matches!(
            roots.resolve("link"),
            Err(PathError::SymlinkOut(_))
        ));
        assert!(matches!(
            roots.resolve("dirlink/outside.bin"),
            Err(PathError::SymlinkOut(_))
        ));
        // A symlink that stays inside is fine.
        std::fs::write(roots.config_dir.join("real.pt"), b"x").expect("write");
        std::os::unix::fs::symlink(
            roots.config_dir.join("real.pt"),
            roots.config_dir.join("in"),
        )
        .expect("symlink");
        assert!(roots.resolve("in").is_ok());
    }

    #[test]
    fn bundle_paths_stay_in_the_bundle() {
        assert!(check_bundle_path("onnx/model.onnx").is_ok());
        assert_eq!(check_bundle_path("../x"), Err(PathError::Escapes));
        assert_eq!(check_bundle_path("a//b"), Err(PathError::Escapes));
        assert_eq!(check_bundle_path("/x"), Err(PathError::Absolute));
    }
}
