//! Finding and loading the ONNX Runtime shared library, and the one `ort` environment per process.
//!
//! `ort` is built with `load-dynamic`: nothing is downloaded or linked at build time, and the
//! library from the pip `onnxruntime` wheel is opened at run time. The search order is
//! `--ort-lib`, `$ORT_DYLIB_PATH`, a library next to the executable, then an installed Python
//! `onnxruntime` package (its `capi/` folder, found without importing onnxruntime). An explicit
//! path that does not work is an error, never silently skipped for the next candidate.
//!
//! ONNX Runtime allows one environment per process, even after the first is dropped, so it lives
//! in a static and every session shares it (tests run as threads of one process and share it too).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::Context as _;

use crate::env::EnvSnapshot;
use crate::error::Problem;

/// How to install the library; printed whenever none is found.
pub const INSTALL_HINT: &str = "install the ONNX Runtime library with \
`python3 -m pip install onnxruntime==1.31.1` (or into a virtual environment), or pass \
`--ort-lib /path/to/libonnxruntime.so.1.31.1`, or set `ORT_DYLIB_PATH` to that file";

/// Where to look for the library; filled from flags and the environment by the caller.
#[derive(Debug, Clone, Default)]
pub struct OrtSearch {
    /// `--ort-lib`.
    pub flag: Option<PathBuf>,
    /// `$ORT_DYLIB_PATH`.
    pub env: Option<OsString>,
    /// The folder of the running executable.
    pub exe_dir: Option<PathBuf>,
    /// Python interpreters to ask, in order.
    pub pythons: Vec<OsString>,
}

/// The Python interpreter of the environment whose `bin/` holds the executable, if any.
fn python_beside(exe_dir: &Path) -> Option<OsString> {
    ["python3", "python", "python.exe"]
        .iter()
        .map(|name| exe_dir.join(name))
        .find(|path| path.is_file())
        .map(PathBuf::into_os_string)
}

impl OrtSearch {
    /// Where to look, given `--ort-lib` and the environment: the flag, `ORT_DYLIB_PATH`, the
    /// executable's folder, then the `onnxruntime` package of `TINYDIT_RELEASE_PYTHON`, of the
    /// Python beside the executable (a pip install), of the active virtual environment, and of
    /// `python3`.
    pub fn new(env: &EnvSnapshot, flag: Option<PathBuf>) -> Self {
        let mut pythons = Vec::new();
        if let Some(python) = &env.python {
            pythons.push(python.clone());
        }
        // Installed by pip (`pip install tinydit-release`, whose wheel depends on onnxruntime):
        // the binary sits in its environment's `bin/` (`Scripts\` on Windows) next to that
        // environment's Python, asked before any other environment's.
        if let Some(python) = env.exe_dir.as_deref().and_then(python_beside) {
            pythons.push(python);
        }
        if let Some(venv) = &env.virtual_env {
            pythons.push(PathBuf::from(venv).join("bin/python3").into_os_string());
        }
        pythons.push("python3".into());
        Self {
            flag,
            env: env.ort_dylib_path.clone(),
            exe_dir: env.exe_dir.clone(),
            pythons,
        }
    }
}

/// Which rule found the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrtSource {
    /// `--ort-lib`.
    Flag,
    /// `$ORT_DYLIB_PATH`.
    Env,
    /// Next to the executable.
    NextToExecutable,
    /// The `onnxruntime` package of this Python interpreter.
    Python(String),
}

impl std::fmt::Display for OrtSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Flag => f.write_str("--ort-lib"),
            Self::Env => f.write_str("ORT_DYLIB_PATH"),
            Self::NextToExecutable => f.write_str("next to the executable"),
            Self::Python(python) => write!(f, "the onnxruntime package of `{python}`"),
        }
    }
}

/// Finds the library file, applying the search order.
pub fn locate(search: &OrtSearch) -> anyhow::Result<(PathBuf, OrtSource)> {
    if let Some(flag) = &search.flag {
        return existing(flag, "--ort-lib").map(|p| (p, OrtSource::Flag));
    }
    if let Some(env) = search.env.as_ref().filter(|e| !e.is_empty()) {
        return existing(Path::new(env), "ORT_DYLIB_PATH").map(|p| (p, OrtSource::Env));
    }
    if let Some(found) = search.exe_dir.as_deref().and_then(library_in) {
        return Ok((found, OrtSource::NextToExecutable));
    }
    for python in &search.pythons {
        if let Some(found) = ask_python(python) {
            return Ok((
                found,
                OrtSource::Python(python.to_string_lossy().into_owned()),
            ));
        }
    }
    Err(Problem::new("the ONNX Runtime library was not found")
        .hint(INSTALL_HINT)
        .into())
}

fn existing(path: &Path, via: &str) -> anyhow::Result<PathBuf> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(Problem::new(format!(
            "the ONNX Runtime library given by {via} does not exist: `{}`",
            path.display()
        ))
        .hint(INSTALL_HINT)
        .into())
    }
}

/// A `libonnxruntime` library file directly inside `dir`, preferring the plainest name.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| {
                n.starts_with("libonnxruntime.so")
                    || n == "libonnxruntime.dylib"
                    || n == "onnxruntime.dll"
            }) && path.is_file()
        })
        .collect();
    candidates.sort_by_key(|p| p.as_os_str().len());
    candidates.into_iter().next()
}

/// Asks a Python interpreter where its `onnxruntime` package keeps the library, without
/// importing onnxruntime (about 20 ms).
fn ask_python(python: &OsString) -> Option<PathBuf> {
    const FIND: &str = "import importlib.util,glob,os,sys\n\
        s=importlib.util.find_spec('onnxruntime')\n\
        d=s and s.submodule_search_locations and s.submodule_search_locations[0]\n\
        f=d and sorted(glob.glob(os.path.join(d,'capi','libonnxruntime.so*'))+glob.glob(os.path.join(d,'capi','libonnxruntime*.dylib'))+glob.glob(os.path.join(d,'capi','onnxruntime.dll')))\n\
        print(f[0] if f else '')";
    let output = Command::new(python)
        .args(["-I", "-c", FIND])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let path = PathBuf::from(text.trim());
    (output.status.success() && path.is_file()).then_some(path)
}

/// The process-wide ONNX Runtime environment and the library it came from.
static ENVIRONMENT: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);

/// Loads the library (once per process) and returns the shared environment.
pub fn environment(search: &OrtSearch) -> anyhow::Result<(ort::environment::Environment, PathBuf)> {
    let mut slot = ENVIRONMENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((path, env)) = slot.as_ref() {
        return Ok((env.clone(), path.clone()));
    }
    let (path, source) = locate(search)?;
    let builder = ort::init_from(&path)
        .map_err(|err| anyhow::Error::new(Problem::new(format!("{err}")).hint(INSTALL_HINT)))
        .with_context(|| {
            format!(
                "failed to load the ONNX Runtime library `{}` (found via {source})",
                path.display()
            )
        })?;
    let env = builder
        .with_name("tinydit-release")
        .build()
        .context("failed to create the ONNX Runtime environment")?;
    *slot = Some((path.clone(), env.clone()));
    Ok((env, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib_in(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, b"not really a library").expect("write");
        path
    }

    #[test]
    fn search_order_is_flag_env_exe_dir_python() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flag = lib_in(dir.path(), "flag.so");
        let env = lib_in(dir.path(), "env.so");
        let exe_dir = dir.path().join("bin");
        std::fs::create_dir(&exe_dir).expect("mkdir");
        let next_to = lib_in(&exe_dir, "libonnxruntime.so.1.31.1");
        let mut search = OrtSearch {
            flag: Some(flag.clone()),
            env: Some(env.clone().into_os_string()),
            exe_dir: Some(exe_dir.clone()),
            pythons: vec![],
        };
        assert_eq!(locate(&search).expect("flag"), (flag, OrtSource::Flag));
        search.flag = None;
        assert_eq!(locate(&search).expect("env"), (env, OrtSource::Env));
        search.env = Some(OsString::new());
        assert_eq!(
            locate(&search).expect("exe dir"),
            (next_to, OrtSource::NextToExecutable)
        );
        search.exe_dir = None;
        search.pythons = vec!["/nonexistent/python3".into()];
        let err = locate(&search).expect_err("nothing left");
        assert_eq!(err.to_string(), "the ONNX Runtime library was not found");
        let hint = crate::error::hint_of(&err).expect("hint");
        assert!(hint.contains("pip install onnxruntime==1.31.1"), "{hint}");
    }

    #[test]
    fn an_explicit_path_that_does_not_exist_is_an_error_not_a_fallthrough() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe_dir = dir.path().to_path_buf();
        lib_in(&exe_dir, "libonnxruntime.so");
        let search = OrtSearch {
            flag: None,
            env: Some(dir.path().join("missing.so").into_os_string()),
            exe_dir: Some(exe_dir),
            pythons: vec![],
        };
        let err = locate(&search).expect_err("missing");
        assert!(err.to_string().contains("ORT_DYLIB_PATH"), "{err}");
        assert!(err.to_string().contains("missing.so"), "{err}");
    }
}
