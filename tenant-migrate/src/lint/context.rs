//! What the linter knows about the migration so far, statement by statement.

use std::collections::HashSet;

use sqlparser::ast::{ObjectName, Set, Statement};

use crate::source::NO_TRANSACTION_MARKER;

/// The state of the migration before the statement being checked.
#[derive(Debug)]
pub(crate) struct Context {
    /// Whether the statement runs inside a transaction: the migrator's, an explicit
    /// `BEGIN`, or the implicit one PostgreSQL wraps around a multi-statement query
    /// (how a `-- no-transaction` file with several statements is sent).
    pub(crate) in_transaction: bool,
    /// Tables created earlier in this migration: no running code uses them yet.
    created_tables: HashSet<String>,
    lock_timeout_set: bool,
    statement_timeout_set: bool,
    /// Whether `require-timeout-settings` has fired already (once per file).
    pub(crate) timeout_reported: bool,
    wrapped: bool,
}

impl Context {
    /// The context before the first of `statements` statements of `sql`.
    pub(crate) fn new(sql: &str, statements: usize) -> Self {
        let wrapped = !sql.starts_with(NO_TRANSACTION_MARKER) || statements > 1;
        Self {
            in_transaction: wrapped,
            created_tables: HashSet::new(),
            lock_timeout_set: false,
            statement_timeout_set: false,
            timeout_reported: false,
            wrapped,
        }
    }

    /// Whether `table` was created earlier in this migration.
    pub(crate) fn is_new_table(&self, table: &ObjectName) -> bool {
        self.created_tables.contains(&table_key(table))
    }

    /// The timeout settings not set yet, by name.
    pub(crate) fn missing_timeouts(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.lock_timeout_set {
            missing.push("lock_timeout");
        }
        if !self.statement_timeout_set {
            missing.push("statement_timeout");
        }
        missing
    }

    /// Records what `statement` changes for the statements after it.
    pub(crate) fn observe(&mut self, statement: &Statement) {
        match statement {
            Statement::CreateTable(create) => {
                self.created_tables.insert(table_key(&create.name));
            }
            Statement::StartTransaction { .. } => self.in_transaction = true,
            Statement::Commit { .. } | Statement::Rollback { .. } => {
                self.in_transaction = self.wrapped
            }
            Statement::Set(Set::SingleAssignment { variable, .. }) => {
                match variable.to_string().to_ascii_lowercase().as_str() {
                    "lock_timeout" => self.lock_timeout_set = true,
                    "statement_timeout" => self.statement_timeout_set = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// A table's name without schema or quotes, lowercased.
fn table_key(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|part| part.to_string().trim_matches('"').to_ascii_lowercase())
        .unwrap_or_default()
}
