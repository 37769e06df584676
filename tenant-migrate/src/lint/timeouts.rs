//! `require-timeout-settings`: DDL that takes strong locks on existing tables,
//! with no `SET lock_timeout` / `statement_timeout` before it. Informational:
//! the migrator sets both itself; the rule matters when other tools run the file.

use sqlparser::ast::{ObjectType, Statement};

use super::context::Context;
use super::{Finding, Rule};

pub(super) fn check(
    statement: &Statement,
    context: &mut Context,
    line: u64,
    out: &mut Vec<Finding>,
) {
    if context.timeout_reported || !takes_strong_lock(statement, context) {
        return;
    }
    let missing = context.missing_timeouts();
    if missing.is_empty() {
        return;
    }
    context.timeout_reported = true;
    out.push(Finding::new(
        Rule::RequireTimeoutSettings,
        line,
        format!(
            "locking DDL runs without SET {} earlier in the file",
            missing.join(" / ")
        ),
    ));
}

fn takes_strong_lock(statement: &Statement, context: &Context) -> bool {
    match statement {
        Statement::AlterTable(alter) => !context.is_new_table(&alter.name),
        // A concurrent build does not block writes, and a `SET` beside it would make
        // its `-- no-transaction` file a multi-statement (transactional) query.
        Statement::CreateIndex(index) => {
            !index.concurrently && !context.is_new_table(&index.table_name)
        }
        Statement::Drop { object_type, .. } => matches!(
            object_type,
            ObjectType::Table | ObjectType::Index | ObjectType::View | ObjectType::MaterializedView
        ),
        Statement::AlterIndex { .. } | Statement::RenameTable(_) | Statement::Truncate(_) => true,
        _ => false,
    }
}
