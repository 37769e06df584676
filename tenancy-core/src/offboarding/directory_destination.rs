use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{ExportDestination, StoredExport};
use crate::local::with_suffix;
use crate::BackendError;

/// Keeps exports in a folder of this machine (or a mounted volume): `<folder>/<name>`
/// beside `<name>.sha256`, a checksum file `sha256sum -c` reads.
///
/// A copy is written under a temporary name of its own (`<name>.<pid>-<random>.partial`)
/// and renamed into place once complete; its checksum file is written after that
/// (also through a rename). [`find`](ExportDestination::find) counts an export whose
/// checksum file is missing, empty, garbled or not the export's as not stored, so a crash never leaves
/// a partial export that is taken for a whole one, and concurrent stores of one name
/// never write the same file.
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

fn io_error(action: &str, path: &Path, error: std::io::Error) -> BackendError {
    BackendError::transient(std::io::Error::new(
        error.kind(),
        format!(
            "could not {action} {}: {error}; check that the export folder exists, is writable and has room",
            path.display()
        ),
    ))
}

/// A temporary name beside `target`, unique to this store (process id and a random
/// number), so concurrent stores of one name never write the same file.
fn temporary(target: &Path, label: &str) -> PathBuf {
    with_suffix(
        target,
        &format!(".{}-{:08x}.{label}", std::process::id(), fastrand::u32(..)),
    )
}

/// Writes `contents` to `path` through a temporary file renamed into place.
async fn write_atomically(path: &Path, contents: String) -> Result<(), BackendError> {
    let partial = temporary(path, "partial");
    let written = async {
        tokio::fs::write(&partial, contents)
            .await
            .map_err(|e| io_error("write", &partial, e))?;
        tokio::fs::rename(&partial, path)
            .await
            .map_err(|e| io_error("move the checksum to", path, e))
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    written
}

/// The SHA-256 a checksum file (`<hex>  <name>`) gives for `name`: `None` when it is
/// empty, garbled or about another file.
fn checksum_in(text: &str, name: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    let sha256 = words.next()?;
    let named = words.next().map(|n| n.trim_start_matches('*'));
    let valid = sha256.len() == 64
        && sha256
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        && named.is_none_or(|n| n == name);
    valid.then(|| sha256.to_owned())
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
        let partial = temporary(&target, "partial");
        let copied = async {
            let size_bytes = tokio::fs::copy(file, &partial)
                .await
                .map_err(|e| io_error("copy the export to", &partial, e))?;
            tokio::fs::rename(&partial, &target)
                .await
                .map_err(|e| io_error("move the export to", &target, e))?;
            Ok::<_, BackendError>(size_bytes)
        }
        .await;
        let size_bytes = match copied {
            Ok(size_bytes) => size_bytes,
            Err(error) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(error);
            }
        };
        // The checksum last: an export without one is not found, and made again.
        let sums = with_suffix(&target, ".sha256");
        write_atomically(&sums, format!("{sha256}  {name}\n")).await?;
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
        let text = match tokio::fs::read_to_string(&sums).await {
            Ok(text) => text,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
                ) =>
            {
                return Ok(None)
            }
            Err(error) => return Err(io_error("read", &sums, error)),
        };
        let Some(sha256) = checksum_in(&text, name) else {
            tracing::warn!(file = %sums.display(), "the export's checksum file is empty or garbled; the export counts as not stored");
            return Ok(None);
        };
        // Two stores of one name at once may leave one's file beside the other's
        // checksum: only an export that matches its checksum counts.
        if super::pipeline::sha256_of(&target).await? != sha256 {
            tracing::warn!(file = %target.display(), "the export does not match its checksum file; it counts as not stored");
            return Ok(None);
        }
        let stored = StoredExport::new(target.display().to_string(), metadata.len(), sha256);
        Ok(Some(match metadata.modified() {
            Ok(modified) => stored.with_stored_at(modified.into()),
            Err(_) => stored,
        }))
    }
}
