//! The migration linter: flags what is not backward compatible or not idempotent.
//!
//! Each rule group lives in its own file; [`lint`] runs them statement by statement
//! with what the file did before (tables it created, timeouts it set, whether it
//! runs in a transaction) and drops findings that an inline
//! `-- lint: allow <rule>` comment silences. [`Finding::for_versions`] checks
//! what only the whole set shows (versions of wildly different lengths).

mod columns;
mod context;
mod destructive;
mod finding;
mod indexes;
mod robust;
mod statements;
mod timeouts;
mod versions;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use context::Context;
pub use finding::{Finding, Rule, Severity};

/// Lints one migration file (PostgreSQL syntax, parsed with `sqlparser`).
///
/// Findings come in file order, each with the statement's first line, its
/// [`Rule`], [`Severity`] and a one-line fix. A statement the parser cannot read
/// yields a `parse-error` warning and the rest of the file is still linted. A
/// `-- lint: allow <rule>[, <rule>…]` comment before a statement, inside it, or
/// after it on its last line silences those rules for that statement.
///
/// `CREATE INDEX CONCURRENTLY` is only accepted alone in a `-- no-transaction`
/// file: PostgreSQL runs a file of several statements as one implicit transaction,
/// where it refuses the concurrent build.
///
/// ```
/// use tenant_migrate::{lint, Rule, Severity};
///
/// let findings = lint("ALTER TABLE items ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);");
/// assert!(findings.iter().all(|f| f.severity != Severity::Error));
///
/// let findings = lint("SET lock_timeout = '5s';\nSET statement_timeout = '1min';\nALTER TABLE items DROP COLUMN IF EXISTS legacy;");
/// assert_eq!(findings[0].rule, Rule::BanDropColumn);
/// assert_eq!((findings[0].line, findings[0].severity), (3, Severity::Error));
/// assert!(lint("ALTER TABLE items DROP COLUMN IF EXISTS legacy; -- lint: allow ban-drop-column")
///     .iter()
///     .all(|f| f.rule != Rule::BanDropColumn));
/// ```
pub fn lint(sql: &str) -> Vec<Finding> {
    // Editors may save a byte-order mark; PostgreSQL and sqlx's marker check do not expect it.
    let sql = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    let statements = match statements::split(sql) {
        Ok(statements) => statements,
        Err(error) => {
            return vec![Finding::new(
                Rule::ParseError,
                error.location.line,
                error.message,
            )]
        }
    };
    let dialect = PostgreSqlDialect {};
    let mut context = Context::new(sql, statements.len());
    let mut findings = Vec::new();
    for source in statements {
        let mut found = Vec::new();
        match Parser::new(&dialect)
            .with_tokens_with_locations(source.tokens)
            .parse_statements()
        {
            Ok(parsed) => {
                for statement in &parsed {
                    destructive::check(statement, source.line, &mut found);
                    columns::check(statement, &context, source.line, &mut found);
                    indexes::check(statement, &context, source.line, &mut found);
                    robust::check(statement, source.line, &mut found);
                    timeouts::check(statement, &mut context, source.line, &mut found);
                    context.observe(statement);
                }
            }
            Err(error) => found.push(Finding::new(
                Rule::ParseError,
                source.line,
                format!("statement could not be parsed: {error}"),
            )),
        }
        findings.extend(
            found
                .into_iter()
                .filter(|f| !source.allowed.contains(&f.rule)),
        );
    }
    findings
}
