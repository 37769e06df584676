//! Index rules: `require-concurrent-index-creation` (except on a table created in
//! the same migration) and `ban-concurrent-index-creation-in-transaction`.

use sqlparser::ast::Statement;

use super::context::Context;
use super::{Finding, Rule};

pub(super) fn check(statement: &Statement, context: &Context, line: u64, out: &mut Vec<Finding>) {
    let Statement::CreateIndex(index) = statement else {
        return;
    };
    let name = index
        .name
        .as_ref()
        .map_or_else(|| "an index".to_owned(), |n| format!("index {n}"));
    if index.concurrently && context.in_transaction {
        out.push(Finding::new(
            Rule::BanConcurrentIndexCreationInTransaction,
            line,
            format!("creates {name} CONCURRENTLY inside a transaction (or beside other statements, which PostgreSQL runs as one), where PostgreSQL refuses it"),
        ));
    }
    if !index.concurrently && !context.is_new_table(&index.table_name) {
        out.push(Finding::new(
            Rule::RequireConcurrentIndexCreation,
            line,
            format!(
                "creates {name} on {} without CONCURRENTLY, blocking writes while it builds",
                index.table_name
            ),
        ));
    }
}
