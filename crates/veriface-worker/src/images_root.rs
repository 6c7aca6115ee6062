//! The shared volume where the upstream service saves photos: message
//! paths are resolved under it and refused if they would leave it.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// Why a message's path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// The path is absolute outside the root, climbs out with `..`, or
    /// leads out through a symbolic link.
    #[error("path is outside the images root")]
    OutsideRoot,
    /// Nothing (or not a regular file) at that path.
    #[error("no image file at that path")]
    NotFound,
    /// The file exists but cannot be read.
    #[error("image file cannot be read: {0}")]
    Unreadable(String),
}

impl PathError {
    /// The stable reason code (dead-letter reason).
    pub const fn code(&self) -> &'static str {
        match self {
            PathError::OutsideRoot => "path_outside_root",
            PathError::NotFound => "file_not_found",
            PathError::Unreadable(_) => "file_unreadable",
        }
    }
}

/// A canonical directory that message paths must stay inside.
#[derive(Debug, Clone)]
pub struct ImagesRoot {
    root: PathBuf,
}

impl ImagesRoot {
    /// Canonicalises `dir` (which must exist).
    ///
    /// # Errors
    /// The I/O error when `dir` does not exist or cannot be resolved.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            root: dir.canonicalize()?,
        })
    }

    /// The canonical root.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Resolves a message path: relative paths are taken from the root;
    /// absolute ones must already be inside it (the upstream service may
    /// send the path as it sees the shared volume mounted at the same
    /// place). `..` may not climb above the root, and the resolved file,
    /// symbolic links followed, must be a regular file inside the root.
    ///
    /// # Errors
    /// [`PathError`].
    pub fn resolve(&self, raw: &str) -> Result<PathBuf, PathError> {
        if raw.is_empty() || raw.contains('\0') {
            return Err(PathError::NotFound);
        }
        let raw = Path::new(raw);
        let relative = if raw.is_absolute() {
            // Compare lexically first: a path naming the root's own
            // location is accepted even before canonicalisation.
            let lexical = normalize(raw).ok_or(PathError::OutsideRoot)?;
            lexical
                .strip_prefix(&self.root)
                .map(Path::to_path_buf)
                .map_err(|_| PathError::OutsideRoot)?
        } else {
            raw.to_path_buf()
        };
        let inside = normalize(&relative).ok_or(PathError::OutsideRoot)?;
        let joined = self.root.join(inside);
        let real = match joined.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(PathError::NotFound),
            Err(e) => return Err(PathError::Unreadable(e.kind().to_string())),
        };
        if !real.starts_with(&self.root) {
            return Err(PathError::OutsideRoot);
        }
        match real.metadata() {
            Ok(m) if m.is_file() => Ok(real),
            Ok(_) => Err(PathError::NotFound),
            Err(e) => Err(PathError::Unreadable(e.kind().to_string())),
        }
    }
}

/// Removes `.` and resolves `..` lexically; `None` when `..` would climb
/// above the start. Root and prefix components are kept.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for c in p.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return None;
                }
                out.pop();
                depth -= 1;
            }
            Component::Normal(s) => {
                out.push(s);
                depth += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, ImagesRoot) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/sub")).unwrap();
        std::fs::write(dir.path().join("root/sub/a.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("secret.jpg"), b"x").unwrap();
        let root = ImagesRoot::new(&dir.path().join("root")).unwrap();
        (dir, root)
    }

    #[test]
    fn resolves_relative_and_absolute_paths_inside_the_root() {
        let (_d, root) = setup();
        let want = root.path().join("sub/a.jpg");
        assert_eq!(root.resolve("sub/a.jpg").unwrap(), want);
        assert_eq!(root.resolve("./sub/../sub/a.jpg").unwrap(), want);
        let abs = want.display().to_string();
        assert_eq!(root.resolve(&abs).unwrap(), want);
    }

    #[test]
    fn refuses_paths_that_leave_the_root() {
        let (d, root) = setup();
        assert_eq!(root.resolve("../secret.jpg"), Err(PathError::OutsideRoot));
        assert_eq!(
            root.resolve("sub/../../secret.jpg"),
            Err(PathError::OutsideRoot)
        );
        let abs = d.path().join("secret.jpg").display().to_string();
        assert_eq!(root.resolve(&abs), Err(PathError::OutsideRoot));
        assert_eq!(root.resolve("/etc/passwd"), Err(PathError::OutsideRoot));
        let sneaky = format!("{}/../secret.jpg", root.path().display());
        assert_eq!(root.resolve(&sneaky), Err(PathError::OutsideRoot));
    }

    #[test]
    fn refuses_symbolic_links_that_point_outside() {
        let (d, root) = setup();
        std::os::unix::fs::symlink(d.path().join("secret.jpg"), root.path().join("link.jpg"))
            .unwrap();
        assert_eq!(root.resolve("link.jpg"), Err(PathError::OutsideRoot));
    }

    #[test]
    fn missing_files_and_directories_are_not_found() {
        let (_d, root) = setup();
        assert_eq!(root.resolve("nope.jpg"), Err(PathError::NotFound));
        assert_eq!(root.resolve("sub"), Err(PathError::NotFound));
        assert_eq!(root.resolve(""), Err(PathError::NotFound));
    }
}
