use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{ExportDestination, StoredExport};
use crate::BackendError;

/// Keeps exports in a folder of this machine (or a mounted volume): `<folder>/<name>`
/// beside `<name>.sha256`, a checksum file `sha256sum -c` reads.
///
/// A copy is written as `<name>.partial` and renamed into place once complete, after
/// its checksum file, so a crash never leaves a partial export under its name.
///
/// ```no_run
/// use tenancy_core::DirectoryExportDestination;
///
/// let exports = DirectoryExportDestination::new("/var/backups/tenants");
/// ```
#[derive(Debug, Clone)]
pub struct DirectoryExportDestination {
    folder: PathBuf,
}

impl DirectoryExportDestination {
    /// Keeps exports in `folder` (created when needed).
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self {
            folder: folder.into(),
        }
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    fn path_of(&self, name: &str) -> Result<PathBuf, BackendError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            return Err(BackendError::permanent(format!(
                "export name `{name}` is not a plain file name; use letters, digits, `-`, `_` and `.`"
            )));
        }
        Ok(self.folder.join(name))
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(action: &str, path: &Path, error: std::io::Error) -> BackendError {
    BackendError::transient(std::io::Error::new(
        error.kind(),
        format!(
            "could not {action} {}: {error}; check that the export folder exists, is writable and has room",
            path.display()
        ),
    ))
}

#[async_trait]
impl ExportDestination for DirectoryExportDestination {
    async fn store(
        &self,
        name: &str,
        file: &Path,
        sha256: &str,
    ) -> Result<StoredExport, BackendError> {
        let target = self.path_of(name)?;
        tokio::fs::create_dir_all(&self.folder)
            .await
            .map_err(|e| io_error("create", &self.folder, e))?;
        let partial = with_suffix(&target, ".partial");
        let size_bytes = tokio::fs::copy(file, &partial)
            .await
            .map_err(|e| io_error("copy the export to", &partial, e))?;
        let sums = with_suffix(&target, ".sha256");
        tokio::fs::write(&sums, format!("{sha256}  {name}\n"))
            .await
            .map_err(|e| io_error("write", &sums, e))?;
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(|e| io_error("move the export to", &target, e))?;
        Ok(StoredExport::new(
            target.display().to_string(),
            size_bytes,
            sha256,
        ))
    }

    async fn find(&self, name: &str) -> Result<Option<StoredExport>, BackendError> {
        let target = self.path_of(name)?;
        let metadata = match tokio::fs::metadata(&target).await {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("read", &target, error)),
        };
        let sums = with_suffix(&target, ".sha256");
        let sha256 = match tokio::fs::read_to_string(&sums).await {
            Ok(text) => text
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("read", &sums, error)),
        };
        Ok(Some(StoredExport::new(
            target.display().to_string(),
            metadata.len(),
            sha256,
        )))
    }
}
