//! Every file and folder the tool writes goes through here.
//!
//! The rules, in one place:
//! - a file is written to a temporary sibling named `.tinydit-release-<pid>-XXXXXX.tmp` and
//!   renamed over the target only when complete, so readers never see half a file and a failure
//!   leaves no partial output; the rename replaces a symlink at the target instead of writing
//!   through it;
//! - an output folder that is a symlink or goes through one below the working directory (a
//!   repository can commit `build -> /anywhere`), or a path that exists and is not a folder, is
//!   refused before any work is done; so is an output file whose folder is or goes through one;
//! - temporaries of our own naming left by a process that no longer runs (a crash, a kill) are
//!   removed the next time a command writes into that folder.
//!
//! Layer 2, bounded input and output: imports only the ground floor.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::error::Problem;

/// Prefix of every temporary file the tool creates.
pub const TEMP_PREFIX: &str = ".tinydit-release-";
/// Suffix of every temporary file the tool creates.
pub const TEMP_SUFFIX: &str = ".tmp";
/// Prefix of the staging folder a bundle is assembled in.
pub const STAGING_PREFIX: &str = ".bundle-";

/// Temporaries whose owner cannot be told apart (no pid in the name, or no `/proc`) are stale
/// after this long without a write.
const STALE_AFTER: Duration = Duration::from_hours(6);

/// A file being written: bytes go to a temporary sibling of `target`; [`AtomicFile::commit`]
/// renames it into place. Dropped without commit, the temporary is removed.
#[derive(Debug)]
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts writing `target`. Its folder must exist.
    pub fn create(target: &Path) -> anyhow::Result<Self> {
        let dir = parent_of(target);
        let temp = temp_file_in(&dir)?;
        Ok(Self {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.temp.as_file_mut()
    }

    /// The temporary file's path (for code that reopens it, e.g. to verify what was written).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Flushes, makes the file readable like any other output (tempfile creates 0600) and renames
    /// it over the target.
    pub fn commit(self) -> anyhow::Result<()> {
        let target = self.target;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            self.temp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .with_context(|| format!("failed to set permissions of `{}`", target.display()))?;
        }
        self.temp
            .persist(&target)
            .map_err(|e| e.error)
            .with_context(|| format!("failed to write `{}`", target.display()))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.temp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.temp.flush()
    }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, without any registered
/// token (`secrets::scrub_bytes`): reports, manifests and summaries may quote what a server said.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let bytes = crate::secrets::scrub_bytes(bytes);
    let mut file = AtomicFile::create(path)?;
    file.write_all(&bytes)
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    file.commit()
}

/// A temporary file of our naming in `dir`.
pub fn temp_file_in(dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))
}

/// Prepares an output folder given by the user (`--out`, `-o`'s folder): refuses a symlink or
/// a non-folder, creates it (and its parents) when missing, and removes stale temporaries of
/// ours inside it. `what` names the flag or key in messages (`--out`).
pub fn prepare_dir(dir: &Path, what: &str) -> anyhow::Result<()> {
    if !check_dir(dir, what)? {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create the folder `{}`", dir.display()))?;
    }
    remove_stale(dir);
    Ok(())
}

/// The refusals of [`prepare_dir`] without creating anything, for commands that check their
/// output folder before any work and create it only when they write: refuses a symlink or a
/// path that exists and is not a folder. Returns whether the folder exists.
pub fn check_dir(dir: &Path, what: &str) -> anyhow::Result<bool> {
    refuse_symlink(dir, what)?;
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(true),
        Ok(_) => Err(Problem::new(format!(
            "{what} `{}` exists and is not a folder",
            dir.display()
        ))
        .hint("name a folder (it is created when missing)")
        .into()),
        Err(_) => Ok(false),
    }
}

/// For an output file: refuses a folder that is or goes through a symlink (see
/// [`refuse_symlink`]). A link at the file itself is replaced by the rename, never followed.
pub fn refuse_symlinked_folder(file: &Path, what: &str) -> anyhow::Result<()> {
    refuse_links(file, std::env::current_dir().ok().as_deref(), what, false)
}

/// Refuses a path that is a symlink or goes through one inside the working directory: outputs
/// are never written through a symlink.
///
/// A repository can commit a symlink (`build -> /home/runner/.ssh`), so `--out build/dist` would
/// write, and replace folders, wherever it points. Every component of a relative path is
/// checked, and of an absolute path every component below the working directory; the folders
/// above it (an absolute `--out` elsewhere, `/tmp` being a link on macOS) are the user's own
/// choice, not the repository's. `.` and `..` are never links.
pub fn refuse_symlink(path: &Path, what: &str) -> anyhow::Result<()> {
    refuse_symlink_below(path, std::env::current_dir().ok().as_deref(), what)
}

/// [`refuse_symlink`] with the working directory given.
fn refuse_symlink_below(path: &Path, cwd: Option<&Path>, what: &str) -> anyhow::Result<()> {
    refuse_links(path, cwd, what, true)
}

/// Refuses a link at a component of `path` below `cwd`; at its last one only when `last`.
fn refuse_links(path: &Path, cwd: Option<&Path>, what: &str, last: bool) -> anyhow::Result<()> {
    let (mut walked, below) = workspace_part(path, cwd);
    let count = below.components().count();
    for (i, component) in below.components().enumerate() {
        walked.push(component);
        let is_last = i + 1 == count;
        if (is_last && !last) || !matches!(component, Component::Normal(_)) || !is_symlink(&walked)
        {
            continue;
        }
        let problem = if is_last {
            Problem::new(format!(
                "{what} `{}` is a symlink; outputs are never written through a symlink",
                path.display()
            ))
            .hint("name a real folder or file instead of the link")
        } else {
            Problem::new(format!(
                "{what} `{}` goes through the symlink `{}`; outputs are never written through \
                 a symlink",
                path.display(),
                walked.display()
            ))
            .hint("name a path without links: a repository can commit a symlink to anywhere")
        };
        return Err(problem.into());
    }
    Ok(())
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Splits `path` into the part that is checked for symlinks and the folder it starts from: a
/// relative path whole (from the working directory), an absolute one below the working
/// directory when it lies there, else only its last component.
fn workspace_part<'a>(path: &'a Path, cwd: Option<&Path>) -> (PathBuf, &'a Path) {
    if path.is_relative() {
        return (PathBuf::new(), path);
    }
    let canonical = cwd.and_then(|c| c.canonicalize().ok());
    for base in cwd.into_iter().chain(canonical.as_deref()) {
        if let Ok(below) = path.strip_prefix(base) {
            return (base.to_path_buf(), below);
        }
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(_)) => (
            parent.to_path_buf(),
            path.strip_prefix(parent)
                .expect("a path starts with its parent"),
        ),
        _ => (PathBuf::new(), Path::new("")),
    }
}

/// Removes `.tinydit-release-*.tmp` files and `.bundle-*` folders in `dir` left by a process that
/// no longer runs. Best effort: a temporary that cannot be removed stays, nothing fails.
pub fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let ours = if kind.is_file() {
            name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
        } else if kind.is_dir() {
            name.starts_with(STAGING_PREFIX)
        } else {
            false
        };
        if !ours || !is_stale(name, &entry.path()) {
            continue;
        }
        if kind.is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        } else {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a temporary's owner is gone: the pid in its name (ours since this naming) is not a
/// running process, or, where that cannot be told, it was not written to for hours.
fn is_stale(name: &str, path: &Path) -> bool {
    let pid = name
        .strip_prefix(TEMP_PREFIX)
        .or_else(|| name.strip_prefix(STAGING_PREFIX))
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    if let Some(pid) = pid
        && Path::new("/proc/self").exists()
    {
        return pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists();
    }
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age > STALE_AFTER)
}

/// The folder of a file path (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_through_a_temporary_and_replaces_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"keep me").expect("write");
        let link = dir.path().join("out.png");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        write_atomically(&link, b"new").expect("write");
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep me");
        assert_eq!(std::fs::read(&link).expect("read"), b"new");
        assert!(
            !std::fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary left: {names:?}");
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("a.npy");
        {
            let mut file = AtomicFile::create(&target).expect("create");
            file.write_all(b"half").expect("write");
        }
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn prepare_dir_refuses_symlinks_and_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let err = prepare_dir(&file, "--out").expect_err("a file");
        assert!(err.to_string().contains("is not a folder"), "{err}");
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(dir.path(), &link).expect("symlink");
            let err = prepare_dir(&link, "--out").expect_err("a symlink");
            assert!(err.to_string().contains("symlink"), "{err}");
        }
        prepare_dir(&dir.path().join("new/nested"), "--out").expect("created");
    }

    /// Issue 14: a committed symlink anywhere below the working directory is refused, the
    /// whole way down; folders above it (an absolute path elsewhere) are the user's choice.
    #[cfg(unix)]
    #[test]
    fn symlinks_anywhere_below_the_working_directory_are_refused() {
        let outside = tempfile::tempdir().expect("tempdir");
        let cwd = tempfile::tempdir().expect("tempdir");
        let cwd = cwd.path();
        std::fs::create_dir_all(cwd.join("real/deeper")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), cwd.join("build")).expect("symlink");
        std::os::unix::fs::symlink(outside.path(), cwd.join("real/link")).expect("symlink");
        for (path, link) in [
            ("build/dist", "build"),
            ("build/dist/more", "build"),
            ("real/link/dist", "real/link"),
            ("real/deeper/../link/x", "real/deeper/../link"),
            ("build/..", "build"),
        ] {
            let err = refuse_symlink_below(&cwd.join(path), Some(cwd), "--out")
                .expect_err(path)
                .to_string();
            assert!(
                err.contains(&format!(
                    "goes through the symlink `{}`",
                    cwd.join(link).display()
                )),
                "{path}: {err}"
            );
        }
        let err = refuse_symlink_below(&cwd.join("real/link"), Some(cwd), "--out")
            .expect_err("the folder itself")
            .to_string();
        assert!(err.contains("is a symlink"), "{err}");
        for fine in ["real", "real/deeper/new", "new/folder", ""] {
            refuse_symlink_below(&cwd.join(fine), Some(cwd), "--out").expect(fine);
        }
        // Outside the working directory only the path itself counts: the link `build` lies
        // above `elsewhere`'s last component when the working directory is elsewhere.
        let elsewhere = tempfile::tempdir().expect("tempdir");
        refuse_symlink_below(&cwd.join("build/dist"), Some(elsewhere.path()), "--out")
            .expect("above the working directory");
        assert!(refuse_symlink_below(&cwd.join("build"), Some(elsewhere.path()), "--out").is_err());
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        // pid 0 is never a user process: a leftover of a dead run.
        let dead = dir
            .path()
            .join(format!("{TEMP_PREFIX}999999999-abc{TEMP_SUFFIX}"));
        std::fs::write(&dead, b"x").expect("write");
        let staging = dir.path().join(format!("{STAGING_PREFIX}999999999-abc"));
        std::fs::create_dir(&staging).expect("mkdir");
        let live = dir.path().join(format!(
            "{TEMP_PREFIX}{}-abc{TEMP_SUFFIX}",
            std::process::id()
        ));
        std::fs::write(&live, b"x").expect("write");
        let other = dir.path().join("user-file.tmp");
        std::fs::write(&other, b"x").expect("write");
        remove_stale(dir.path());
        assert!(!dead.exists());
        assert!(!staging.exists());
        assert!(live.exists(), "our own process's temporary stays");
        assert!(other.exists(), "files not of our naming stay");
    }
}
