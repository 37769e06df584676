//! Set-wide checks on the migrations' versions, which no single file shows.

use super::finding::{Finding, Rule};
use crate::MigrationSet;

/// Digits apart from which two versions look like different numbering schemes.
const WILD_DIGITS: usize = 4;

fn digits(version: i64) -> usize {
    version
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1)
}

/// A `mixed-version-lengths` warning for each migration whose version is far
/// shorter than the set's longest (`2024` beside `20240101000000`): it sorts
/// before them all, whatever date its name meant.
pub(crate) fn check(set: &MigrationSet) -> Vec<Finding> {
    let Some(longest) = set.iter().max_by_key(|m| digits(m.version())) else {
        return Vec::new();
    };
    let wide = digits(longest.version());
    set.iter()
        .filter(|m| digits(m.version()) + WILD_DIGITS <= wide)
        .map(|m| {
            Finding::new(
                Rule::MixedVersionLengths,
                0,
                format!(
                    "{} has version {} ({} digits) beside versions of {wide} digits such as {} ({}): it sorts before them; a date written with `_` is read up to its first `_`",
                    m.file(),
                    m.version(),
                    digits(m.version()),
                    longest.version(),
                    longest.file(),
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_version_beside_timestamps_is_flagged() {
        let set = MigrationSet::builder()
            .file("20240101000000_a.sql", "SELECT 1;")
            .file("20240201000000_b.sql", "SELECT 1;")
            .file("2024_03_01_x.sql", "SELECT 1;")
            .build()
            .unwrap();
        let found = Finding::for_versions(&set);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, Rule::MixedVersionLengths);
        assert_eq!(found[0].severity, crate::Severity::Warning);
        assert!(found[0]
            .message
            .starts_with("2024_03_01_x.sql has version 2024"));
        assert!(found[0]
            .message
            .contains("a date written with `_` is read up to its first `_`"));

        let small = MigrationSet::builder()
            .file("1_a.sql", "SELECT 1;")
            .file("12_b.sql", "SELECT 1;")
            .build()
            .unwrap();
        assert!(Finding::for_versions(&small).is_empty());
        let stamps = MigrationSet::builder()
            .file("20240101000000_a.sql", "SELECT 1;")
            .file("202402010000_b.sql", "SELECT 1;")
            .build()
            .unwrap();
        assert!(Finding::for_versions(&stamps).is_empty());
    }
}
