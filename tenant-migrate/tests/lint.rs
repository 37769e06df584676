//! Every lint rule, both ways: flagged when it applies, silent when it does not.

use tenant_migrate::{lint, Finding, Rule, Severity};

/// Timeouts set first, so that `require-timeout-settings` stays out of the way.
const TIMEOUTS: &str = "SET lock_timeout = '5s';\nSET statement_timeout = '5min';\n";

fn rules(sql: &str) -> Vec<Rule> {
    lint(&format!("{TIMEOUTS}{sql}"))
        .into_iter()
        .map(|f| f.rule)
        .collect()
}

fn only(sql: &str) -> Finding {
    let findings = lint(&format!("{TIMEOUTS}{sql}"));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    findings.into_iter().next().unwrap()
}

#[test]
fn the_seeds_own_migration_has_no_error() {
    let findings = lint("ALTER TABLE items ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);");
    assert!(
        findings.iter().all(|f| f.severity == Severity::Warning),
        "{findings:#?}"
    );
    assert_eq!(
        findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [Rule::RequireTimeoutSettings]
    );
    assert!(rules("ALTER TABLE items ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);").is_empty());
}

#[test]
fn ban_drop_column() {
    let finding = only("ALTER TABLE items DROP COLUMN IF EXISTS legacy;");
    assert_eq!(
        (finding.rule, finding.severity, finding.line),
        (Rule::BanDropColumn, Severity::Error, 3)
    );
    assert!(finding.message.contains("legacy") && finding.message.contains("items"));
    assert!(!finding.hint.is_empty());
    assert!(rules("ALTER TABLE items ADD COLUMN IF NOT EXISTS legacy TEXT;").is_empty());
}

#[test]
fn ban_drop_table() {
    assert_eq!(
        rules("DROP TABLE IF EXISTS old_items;"),
        [Rule::BanDropTable]
    );
    assert!(rules("DROP VIEW IF EXISTS old_view;").is_empty());
}

#[test]
fn renaming_column() {
    assert_eq!(
        rules("ALTER TABLE items RENAME COLUMN name TO title;"),
        [Rule::RenamingColumn]
    );
    assert!(rules("ALTER TABLE items RENAME CONSTRAINT a TO b;").is_empty());
}

#[test]
fn renaming_table() {
    assert_eq!(
        rules("ALTER TABLE items RENAME TO products;"),
        [Rule::RenamingTable]
    );
    assert!(rules("CREATE VIEW products AS SELECT * FROM items;").is_empty());
}

#[test]
fn changing_column_type() {
    let finding = only("ALTER TABLE items ALTER COLUMN price TYPE BIGINT;");
    assert_eq!(
        (finding.rule, finding.severity),
        (Rule::ChangingColumnType, Severity::Error)
    );
    assert!(rules("ALTER TABLE items ALTER COLUMN price SET DEFAULT 0;").is_empty());
    // A table created in the same migration has no readers yet.
    assert!(rules(
        "CREATE TABLE IF NOT EXISTS t (id INT);\nALTER TABLE t ALTER COLUMN id TYPE BIGINT;"
    )
    .is_empty());
}

#[test]
fn adding_required_field() {
    let finding = only("ALTER TABLE items ADD COLUMN IF NOT EXISTS sku TEXT NOT NULL;");
    assert_eq!(
        (finding.rule, finding.severity),
        (Rule::AddingRequiredField, Severity::Error)
    );
    assert!(
        rules("ALTER TABLE items ADD COLUMN IF NOT EXISTS sku TEXT NOT NULL DEFAULT '';")
            .is_empty()
    );
    assert!(rules("ALTER TABLE items ADD COLUMN IF NOT EXISTS sku TEXT;").is_empty());
    assert!(rules("ALTER TABLE items ADD COLUMN IF NOT EXISTS n BIGSERIAL NOT NULL;").is_empty());
    assert!(rules(
        "ALTER TABLE items ADD COLUMN IF NOT EXISTS n INT GENERATED ALWAYS AS IDENTITY NOT NULL;"
    )
    .is_empty());
}

#[test]
fn require_concurrent_index_creation() {
    let finding = only("CREATE INDEX IF NOT EXISTS items_name_idx ON items (name);");
    assert_eq!(
        (finding.rule, finding.severity),
        (Rule::RequireConcurrentIndexCreation, Severity::Warning)
    );
    let concurrent = lint("-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_name_idx ON items (name);");
    assert!(
        concurrent
            .iter()
            .all(|f| f.rule == Rule::RequireTimeoutSettings),
        "{concurrent:#?}"
    );
    // Except on a table created in the same migration.
    assert!(rules(
        "CREATE TABLE IF NOT EXISTS t (id INT);\nCREATE INDEX IF NOT EXISTS t_idx ON t (id);"
    )
    .is_empty());
}

#[test]
fn ban_concurrent_index_creation_in_transaction() {
    let finding = only("CREATE INDEX CONCURRENTLY IF NOT EXISTS items_name_idx ON items (name);");
    assert_eq!(
        (finding.rule, finding.severity),
        (
            Rule::BanConcurrentIndexCreationInTransaction,
            Severity::Error
        )
    );
    assert!(
        !lint("-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON items (name);")
            .iter()
            .any(|f| f.rule == Rule::BanConcurrentIndexCreationInTransaction)
    );
    // An explicit BEGIN in a no-transaction file is a transaction again.
    let explicit = lint("-- no-transaction\nBEGIN;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON items (name);\nCOMMIT;");
    assert!(explicit
        .iter()
        .any(|f| f.rule == Rule::BanConcurrentIndexCreationInTransaction && f.line == 3));
    // Several statements in a no-transaction file are one implicit transaction to
    // PostgreSQL ("cannot run inside a transaction block"), whatever their order.
    let beside = lint(&format!(
        "-- no-transaction\n{TIMEOUTS}CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON items (name);"
    ));
    assert!(
        beside
            .iter()
            .any(|f| f.rule == Rule::BanConcurrentIndexCreationInTransaction && f.line == 4),
        "{beside:#?}"
    );
    let first = lint("-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON items (name);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS j ON items (id);");
    let lines: Vec<_> = first
        .iter()
        .filter(|f| f.rule == Rule::BanConcurrentIndexCreationInTransaction)
        .map(|f| f.line)
        .collect();
    assert_eq!(lines, [2, 3], "{first:#?}");
}

#[test]
fn a_lone_concurrent_index_gets_no_advice_that_would_break_it() {
    // Adding `SET lock_timeout` to this file would make it a multi-statement query.
    let findings = lint(
        "-- no-transaction\n-- the index alone\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON items (name);\n",
    );
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn prefer_robust_stmts() {
    let flagged = [
        "CREATE TABLE t (id INT);",
        "CREATE INDEX CONCURRENTLY i ON t (id);",
        "DROP INDEX i;",
        "ALTER TABLE items ADD COLUMN note TEXT;",
        "ALTER TABLE items DROP CONSTRAINT items_check;",
    ];
    for sql in flagged {
        let findings = lint(&format!("-- no-transaction\n{TIMEOUTS}{sql}"));
        let robust: Vec<_> = findings
            .iter()
            .filter(|f| f.rule == Rule::PreferRobustStmts)
            .collect();
        assert_eq!(robust.len(), 1, "{sql}: {findings:#?}");
        assert_eq!(robust[0].severity, Severity::Warning);
    }
    let robust = [
        "CREATE TABLE IF NOT EXISTS t (id INT);",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (id);",
        "DROP INDEX IF EXISTS i;",
        "ALTER TABLE items ADD COLUMN IF NOT EXISTS note TEXT;",
        "ALTER TABLE items DROP CONSTRAINT IF EXISTS items_check;",
    ];
    for sql in robust {
        let findings = lint(&format!("-- no-transaction\n{TIMEOUTS}{sql}"));
        assert!(
            findings.iter().all(|f| f.rule != Rule::PreferRobustStmts),
            "{sql}: {findings:#?}"
        );
    }
}

#[test]
fn require_timeout_settings() {
    let findings = lint("CREATE TABLE IF NOT EXISTS t (id INT);\nALTER TABLE items ADD COLUMN IF NOT EXISTS a INT;\nALTER TABLE items ADD COLUMN IF NOT EXISTS b INT;");
    let timeouts: Vec<_> = findings
        .iter()
        .filter(|f| f.rule == Rule::RequireTimeoutSettings)
        .collect();
    assert_eq!(timeouts.len(), 1, "reported once per file: {findings:#?}");
    assert_eq!(
        (timeouts[0].line, timeouts[0].severity),
        (2, Severity::Warning)
    );
    assert!(
        timeouts[0].message.contains("lock_timeout")
            && timeouts[0].message.contains("statement_timeout")
    );

    let only_lock =
        lint("SET lock_timeout = '2s';\nALTER TABLE items ADD COLUMN IF NOT EXISTS a INT;");
    assert!(
        only_lock[0].message.contains("statement_timeout")
            && !only_lock[0].message.contains("lock_timeout ")
    );
    assert!(lint(&format!(
        "{TIMEOUTS}ALTER TABLE items ADD COLUMN IF NOT EXISTS a INT;"
    ))
    .is_empty());
    assert!(lint("CREATE TABLE IF NOT EXISTS t (id INT);\nINSERT INTO t VALUES (1);").is_empty());
}

#[test]
fn allow_comments_silence_only_the_named_rules_of_their_statement() {
    let sql = format!(
        "{TIMEOUTS}-- lint: allow ban-drop-column\nALTER TABLE items DROP COLUMN IF EXISTS a;\n\
         ALTER TABLE items DROP COLUMN IF EXISTS b; -- lint: allow ban-drop-column, renaming-table\n\
         ALTER TABLE items DROP COLUMN IF EXISTS c;\n\
         /* lint: allow prefer-robust-stmts */ DROP TABLE d;"
    );
    let findings = lint(&sql);
    let summary: Vec<_> = findings.iter().map(|f| (f.rule, f.line)).collect();
    assert_eq!(summary, [(Rule::BanDropColumn, 6), (Rule::BanDropTable, 7)]);
}

#[test]
fn unparsable_statements_are_reported_and_the_rest_is_linted() {
    let sql = format!("{TIMEOUTS}FROBNICATE THE DATABASE;\nDROP TABLE IF EXISTS old;\n");
    let findings = lint(&sql);
    let summary: Vec<_> = findings
        .iter()
        .map(|f| (f.rule, f.severity, f.line))
        .collect();
    assert_eq!(
        summary,
        [
            (Rule::ParseError, Severity::Warning, 3),
            (Rule::BanDropTable, Severity::Error, 4)
        ]
    );
    let untokenizable = lint("SELECT 'never closed;");
    assert_eq!(untokenizable.len(), 1);
    assert_eq!(untokenizable[0].rule, Rule::ParseError);
}

#[test]
fn findings_display_line_rule_severity_and_fix() {
    let finding = only("DROP TABLE IF EXISTS old;");
    let shown = finding.to_string();
    assert!(
        shown.starts_with("line 3: error [ban-drop-table]"),
        "{shown}"
    );
    assert!(shown.contains("fix:"), "{shown}");
    assert!(Rule::ALL
        .iter()
        .all(|r| Rule::from_name(r.name()) == Some(*r)));
}

#[test]
fn fixture_migrations_lint_without_errors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations");
    let set = tenant_migrate::MigrationSet::from_dir(dir).unwrap();
    for migration in &set {
        let errors: Vec<_> = lint(migration.sql())
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", migration.file());
    }
    // Their down files drop what the up files added, and the linter says so.
    let down = set.get(20240102000000).unwrap().down_sql().unwrap();
    assert!(lint(down).iter().any(|f| f.rule == Rule::BanDropColumn));
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let finding = only("DROP TABLE IF EXISTS old;");
    let with_bom = lint(&format!("\u{feff}{TIMEOUTS}DROP TABLE IF EXISTS old;"));
    assert_eq!(with_bom, [finding]);
}

#[test]
fn multi_statement_files_with_comments_and_function_bodies_keep_their_lines() {
    let sql = format!(
        "{TIMEOUTS}/* header\n   spanning lines; with a semicolon */\n\
         CREATE OR REPLACE FUNCTION touch() RETURNS trigger AS $body$\n\
         BEGIN\n  DROP TABLE audit; -- inside the body: not a statement of the file\n  RETURN NEW;\nEND;\n\
         $body$ LANGUAGE plpgsql;\n\
         SELECT ';', $$ ; $$, E'\\' ;';\n\
         ALTER TABLE items\n  RENAME COLUMN a TO b;\n"
    );
    let summary: Vec<_> = lint(&sql).iter().map(|f| (f.rule, f.line)).collect();
    assert_eq!(summary, [(Rule::RenamingColumn, 12)]);
}

#[test]
fn no_input_makes_the_linter_panic() {
    let deep = format!("SELECT {}1{};", "(".repeat(50_000), ")".repeat(50_000));
    let huge = "ALTER TABLE items ADD COLUMN IF NOT EXISTS c INT;\n".repeat(5_000);
    let odd = [
        "",
        " \n\t",
        "-- only a comment",
        "/* only a block */",
        ";;;",
        "'",
        "\"",
        "$",
        "$a",
        "$$",
        "$tag$ never closed",
        "E'\\",
        "U&'",
        "X'",
        "/* never closed",
        "\0",
        "\\connect other",
        "ü'",
        "-- lint: allow",
        "-- lint: allow no-such-rule\nDROP TABLE IF EXISTS a;",
        &deep,
        &huge,
    ];
    for sql in odd {
        let findings = lint(sql);
        assert!(
            findings
                .iter()
                .all(|f| f.line >= 1 && !f.message.is_empty()),
            "{sql:.40}: {findings:#?}"
        );
    }
    assert!(lint("").is_empty() && lint("-- only a comment").is_empty());
    assert_eq!(lint(&deep)[0].rule, Rule::ParseError);
    assert_eq!(lint("$tag$ never closed")[0].rule, Rule::ParseError);
}
