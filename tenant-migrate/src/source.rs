//! Migration file names in sqlx's convention, and loading a directory of them.

use std::fs;
use std::path::Path;

use crate::{MigrationSet, MigrationSourceError};

/// The first line that makes sqlx (and us) run a migration outside a transaction.
pub(crate) const NO_TRANSACTION_MARKER: &str = "-- no-transaction";

/// The role of a file in sqlx's naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `<VERSION>_<description>.sql`
    Simple,
    /// `<VERSION>_<description>.up.sql`
    Up,
    /// `<VERSION>_<description>.down.sql`
    Down,
}

/// A parsed migration file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileName {
    pub(crate) version: i64,
    pub(crate) description: String,
    pub(crate) kind: FileKind,
}

/// Parses a file name as sqlx does: `None` for files that are not migrations
/// (sqlx ignores them), an error for a migration-looking name without a numeric version.
pub(crate) fn parse_file_name(name: &str) -> Option<Result<FileName, MigrationSourceError>> {
    let (version, rest) = name.split_once('_')?;
    if !rest.ends_with(".sql") {
        return None;
    }
    let (kind, suffix) = if rest.ends_with(".up.sql") {
        (FileKind::Up, ".up.sql")
    } else if rest.ends_with(".down.sql") {
        (FileKind::Down, ".down.sql")
    } else {
        (FileKind::Simple, ".sql")
    };
    let parsed = version
        .parse::<i64>()
        .map_err(|_| MigrationSourceError::InvalidName {
            name: name.to_owned(),
            reason: "expected an integer version prefix, e.g. `20240127_add_new_field.sql`",
        })
        .map(|version| FileName {
            version,
            description: description_from(rest.trim_end_matches(suffix)),
            kind,
        });
    Some(parsed)
}

/// sqlx's description: the name's rest with `_` turned into spaces.
pub(crate) fn description_from(raw: &str) -> String {
    raw.replace('_', " ")
}

/// Loads every migration file of `dir` (sub-directories and other files are ignored).
pub(crate) fn load_dir(dir: &Path) -> Result<MigrationSet, MigrationSourceError> {
    let io_error = |source| MigrationSourceError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut builder = MigrationSet::builder();
    let mut entries = fs::read_dir(dir)
        .map_err(io_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error)?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if parse_file_name(&name).is_none() {
            continue;
        }
        let sql = fs::read_to_string(&path)
            .map_err(|source| MigrationSourceError::Io { path, source })?;
        builder = builder.file(name, sql);
    }
    builder.build()
}

/// The files of `dir` that look like SQL (a name ending in `.sql`, any case) but are
/// not read as migrations, by name.
pub(crate) fn unread_sql_files(dir: &Path) -> Result<Vec<String>, MigrationSourceError> {
    let io_error = |source| MigrationSourceError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut unread = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let sql_like = name.to_ascii_lowercase().ends_with(".sql");
        if sql_like && entry.path().is_file() && parse_file_name(&name).is_none() {
            unread.push(name);
        }
    }
    unread.sort();
    Ok(unread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlx_file_names() {
        let simple = parse_file_name("20240101_create_items.sql")
            .unwrap()
            .unwrap();
        assert_eq!(
            (simple.version, simple.description.as_str(), simple.kind),
            (20240101, "create items", FileKind::Simple)
        );
        let up = parse_file_name("2_add_index.up.sql").unwrap().unwrap();
        assert_eq!(
            (up.version, up.description.as_str(), up.kind),
            (2, "add index", FileKind::Up)
        );
        let down = parse_file_name("2_add_index.down.sql").unwrap().unwrap();
        assert_eq!(down.kind, FileKind::Down);
        assert!(parse_file_name("README.md").is_none());
        assert!(parse_file_name("notes_on_things.txt").is_none());
        assert!(matches!(
            parse_file_name("abc_init.sql"),
            Some(Err(MigrationSourceError::InvalidName { .. }))
        ));
    }

    #[test]
    fn names_the_sql_files_that_are_not_read() {
        let dir = std::env::temp_dir().join(format!("tk-unread-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("nested.sql")).unwrap();
        for name in [
            "20240101000000_items.sql",
            "20240201000000.sql",
            "20240301000000_loud.SQL",
            "notes.sql",
            "README.md",
        ] {
            fs::write(dir.join(name), "SELECT 1;").unwrap();
        }
        let unread = unread_sql_files(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            unread,
            ["20240201000000.sql", "20240301000000_loud.SQL", "notes.sql"]
        );
    }
}
