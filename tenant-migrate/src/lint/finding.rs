use std::fmt;

/// How bad a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Worth a look; does not block a rollout.
    Warning,
    /// Breaks running code or blocks writes for long: a rollout refuses it unless allowed.
    Error,
}

impl Severity {
    /// `"warning"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lint rule, named as squawk names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// `ALTER TABLE … DROP COLUMN`: running code still reads the column.
    BanDropColumn,
    /// `DROP TABLE`: running code still reads the table.
    BanDropTable,
    /// `ALTER TABLE … RENAME COLUMN`: running code uses the old name.
    RenamingColumn,
    /// `ALTER TABLE … RENAME TO`: running code uses the old name.
    RenamingTable,
    /// `ALTER COLUMN … TYPE`: rewrites the table under an exclusive lock, may break readers.
    ChangingColumnType,
    /// `ADD COLUMN … NOT NULL` without a default: fails on a non-empty table, breaks inserts.
    AddingRequiredField,
    /// `CREATE INDEX` without `CONCURRENTLY`: blocks writes while it builds.
    RequireConcurrentIndexCreation,
    /// `CREATE INDEX CONCURRENTLY` in a transaction: PostgreSQL refuses it.
    BanConcurrentIndexCreationInTransaction,
    /// A statement without `IF [NOT] EXISTS` fails when rerun.
    PreferRobustStmts,
    /// Locking DDL without `SET lock_timeout` / `statement_timeout`.
    RequireTimeoutSettings,
    /// The parser could not read a statement, so it was not checked.
    ParseError,
    /// A version far shorter than the set's others (`2024` beside
    /// `20240101000000`): it sorts before them all. Found by
    /// [`Finding::for_versions`], over the whole set.
    MixedVersionLengths,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 12] = [
        Rule::BanDropColumn,
        Rule::BanDropTable,
        Rule::RenamingColumn,
        Rule::RenamingTable,
        Rule::ChangingColumnType,
        Rule::AddingRequiredField,
        Rule::RequireConcurrentIndexCreation,
        Rule::BanConcurrentIndexCreationInTransaction,
        Rule::PreferRobustStmts,
        Rule::RequireTimeoutSettings,
        Rule::ParseError,
        Rule::MixedVersionLengths,
    ];

    /// The rule's name, as written in `-- lint: allow <name>` and `--allow-lint`.
    pub fn name(self) -> &'static str {
        match self {
            Self::BanDropColumn => "ban-drop-column",
            Self::BanDropTable => "ban-drop-table",
            Self::RenamingColumn => "renaming-column",
            Self::RenamingTable => "renaming-table",
            Self::ChangingColumnType => "changing-column-type",
            Self::AddingRequiredField => "adding-required-field",
            Self::RequireConcurrentIndexCreation => "require-concurrent-index-creation",
            Self::BanConcurrentIndexCreationInTransaction => {
                "ban-concurrent-index-creation-in-transaction"
            }
            Self::PreferRobustStmts => "prefer-robust-stmts",
            Self::RequireTimeoutSettings => "require-timeout-settings",
            Self::ParseError => "parse-error",
            Self::MixedVersionLengths => "mixed-version-lengths",
        }
    }

    /// The rule named `name`, if any.
    pub fn from_name(name: &str) -> Option<Rule> {
        Self::ALL.into_iter().find(|rule| rule.name() == name)
    }

    /// The rule's severity.
    pub fn severity(self) -> Severity {
        match self {
            Self::BanDropColumn
            | Self::BanDropTable
            | Self::RenamingColumn
            | Self::RenamingTable
            | Self::ChangingColumnType
            | Self::AddingRequiredField
            | Self::BanConcurrentIndexCreationInTransaction => Severity::Error,
            Self::RequireConcurrentIndexCreation
            | Self::PreferRobustStmts
            | Self::RequireTimeoutSettings
            | Self::ParseError
            | Self::MixedVersionLengths => Severity::Warning,
        }
    }

    /// A one-line fix.
    pub fn hint(self) -> &'static str {
        match self {
            Self::BanDropColumn => "stop using the column in the application first, then drop it in a later release",
            Self::BanDropTable => "stop using the table in the application first, then drop it in a later release",
            Self::RenamingColumn => "add the new column, write both, backfill, switch reads, then drop the old one",
            Self::RenamingTable => "create the new table (or a view under the new name), move the code over, then drop the old one",
            Self::ChangingColumnType => "add a column of the new type, backfill it, switch the code over, then drop the old column",
            Self::AddingRequiredField => "add the column nullable or with a DEFAULT, backfill, then SET NOT NULL",
            Self::RequireConcurrentIndexCreation => "use CREATE INDEX CONCURRENTLY in a `-- no-transaction` migration",
            Self::BanConcurrentIndexCreationInTransaction => {
                "start the file with `-- no-transaction` and keep the index alone in it"
            }
            Self::PreferRobustStmts => "add IF NOT EXISTS / IF EXISTS so a rerun after a failure succeeds",
            Self::RequireTimeoutSettings => {
                "add `SET lock_timeout = '5s';` first if other tools run this file (the migrator sets it itself)"
            }
            Self::ParseError => "check the statement's syntax; it was not linted",
            Self::MixedVersionLengths => {
                "write the version in full, e.g. 2024_03_01_x.sql -> 20240301000000_x.sql, after the latest applied one"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem [`lint`](crate::lint) found in a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// The rule's severity.
    pub severity: Severity,
    /// The 1-based line where the statement starts; 0 for a finding about the
    /// whole set (its versions), not one file.
    pub line: u64,
    /// What was found, naming the object.
    pub message: String,
    /// A one-line fix.
    pub hint: &'static str,
}

/// `{"rule", "severity", "line", "message", "hint"}`, as the admin API shows it.
impl serde::Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut finding = serializer.serialize_struct("Finding", 5)?;
        finding.serialize_field("rule", self.rule.name())?;
        finding.serialize_field("severity", self.severity.as_str())?;
        finding.serialize_field("line", &self.line)?;
        finding.serialize_field("message", &self.message)?;
        finding.serialize_field("hint", self.hint)?;
        finding.end()
    }
}

impl Finding {
    /// The findings about the set's versions as a whole, which linting each file
    /// cannot show: a `mixed-version-lengths` warning (line 1 of the file it
    /// names) for each version far shorter than the set's longest, such as
    /// `2024_03_01_x.sql` (read, as sqlx does, as version 2024: a date written
    /// with `_` is read up to its first `_`) beside `20240101000000_a.sql`.
    ///
    /// ```
    /// use tenant_migrate::{Finding, MigrationSet, Rule};
    ///
    /// let set = MigrationSet::builder()
    ///     .file("20240101000000_a.sql", "SELECT 1;")
    ///     .file("2024_03_01_x.sql", "SELECT 1;")
    ///     .build()?;
    /// let found = Finding::for_versions(&set);
    /// assert_eq!(found[0].rule, Rule::MixedVersionLengths);
    /// # Ok::<(), tenant_migrate::MigrationSourceError>(())
    /// ```
    pub fn for_versions(set: &crate::MigrationSet) -> Vec<Finding> {
        super::versions::check(set)
    }

    pub(crate) fn new(rule: Rule, line: u64, message: impl Into<String>) -> Self {
        Self {
            rule,
            severity: rule.severity(),
            line,
            message: message.into(),
            hint: rule.hint(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: a finding about the set, not a line of one file.
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        write!(
            f,
            "{} [{}] {} (fix: {})",
            self.severity, self.rule, self.message, self.hint
        )
    }
}
