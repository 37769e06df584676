//! Splitting a migration file into statements with their line and their
//! `-- lint: allow <rule>` comments, using the SQL tokenizer (so semicolons in
//! strings, comments and `$$` bodies never split a statement).

use std::collections::BTreeSet;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, TokenizerError, Whitespace};

use super::Rule;

/// One statement's tokens, where it starts, and the rules its comments allow.
#[derive(Debug)]
pub(crate) struct StatementSource {
    pub(crate) tokens: Vec<TokenWithSpan>,
    pub(crate) line: u64,
    pub(crate) allowed: BTreeSet<Rule>,
}

/// Splits `sql` into statements. Fails only when the text cannot be tokenized at
/// all (an unterminated string or comment).
pub(crate) fn split(sql: &str) -> Result<Vec<StatementSource>, TokenizerError> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location()?;
    let mut statements: Vec<StatementSource> = Vec::new();
    let mut current = Vec::new();
    let mut allowed = BTreeSet::new();
    let mut last_semicolon_line = None;
    for token in tokens {
        match &token.token {
            Token::SemiColon => {
                last_semicolon_line = Some(token.span.start.line);
                finish(
                    &mut statements,
                    std::mem::take(&mut current),
                    std::mem::take(&mut allowed),
                );
            }
            Token::Whitespace(whitespace) => {
                let rules = allowed_rules(whitespace);
                let trailing =
                    last_semicolon_line == Some(token.span.start.line) && is_blank(&current);
                match statements.last_mut() {
                    // `ALTER …; -- lint: allow x` belongs to the statement it follows.
                    Some(previous) if trailing && !rules.is_empty() => {
                        previous.allowed.extend(rules)
                    }
                    _ => allowed.extend(rules),
                }
                current.push(token);
            }
            _ => current.push(token),
        }
    }
    finish(&mut statements, current, allowed);
    Ok(statements)
}

fn finish(
    statements: &mut Vec<StatementSource>,
    tokens: Vec<TokenWithSpan>,
    allowed: BTreeSet<Rule>,
) {
    let Some(first) = tokens
        .iter()
        .find(|t| !matches!(t.token, Token::Whitespace(_)))
    else {
        // Only white space and comments (after the last statement): nothing to lint.
        return;
    };
    let line = first.span.start.line;
    statements.push(StatementSource {
        tokens,
        line,
        allowed,
    });
}

fn is_blank(tokens: &[TokenWithSpan]) -> bool {
    tokens
        .iter()
        .all(|t| matches!(t.token, Token::Whitespace(_)))
}

/// The rules named by a `-- lint: allow a, b` (or `/* lint: allow a */`) comment.
fn allowed_rules(whitespace: &Whitespace) -> Vec<Rule> {
    let text = match whitespace {
        Whitespace::SingleLineComment { comment, .. } => comment.as_str(),
        Whitespace::MultiLineComment(comment) => comment.as_str(),
        _ => return Vec::new(),
    };
    let Some(names) = text
        .trim()
        .strip_prefix("lint:")
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix("allow"))
    else {
        return Vec::new();
    };
    names
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(Rule::from_name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_outside_strings_and_bodies() {
        let sql = "SELECT ';';\n\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- trailing comment\n";
        let statements = split(sql).unwrap();
        assert_eq!(
            statements.iter().map(|s| s.line).collect::<Vec<_>>(),
            [1, 3]
        );
    }

    #[test]
    fn attaches_allow_comments_to_their_statement() {
        let sql = "-- lint: allow ban-drop-table\nDROP TABLE a;\nDROP TABLE b; -- lint: allow ban-drop-table, renaming-table\nDROP TABLE c;";
        let statements = split(sql).unwrap();
        let allowed: Vec<Vec<Rule>> = statements
            .iter()
            .map(|s| s.allowed.iter().copied().collect())
            .collect();
        assert_eq!(
            allowed,
            [
                vec![Rule::BanDropTable],
                vec![Rule::BanDropTable, Rule::RenamingTable],
                vec![]
            ]
        );
        assert_eq!(
            statements.iter().map(|s| s.line).collect::<Vec<_>>(),
            [2, 3, 4]
        );
    }
}
