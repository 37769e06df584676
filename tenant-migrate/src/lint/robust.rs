//! `prefer-robust-stmts`: statements that fail when rerun after a partial failure
//! because they lack `IF [NOT] EXISTS`.

use sqlparser::ast::{AlterTableOperation, Statement};

use super::{Finding, Rule};

pub(super) fn check(statement: &Statement, line: u64, out: &mut Vec<Finding>) {
    let mut flag = |what: String| out.push(Finding::new(Rule::PreferRobustStmts, line, what));
    match statement {
        Statement::CreateTable(create)
            if !create.if_not_exists && !create.or_replace && !create.temporary =>
        {
            flag(format!(
                "CREATE TABLE {} without IF NOT EXISTS",
                create.name
            ));
        }
        Statement::CreateIndex(index) if !index.if_not_exists && index.name.is_some() => {
            flag(format!(
                "CREATE INDEX {} without IF NOT EXISTS",
                index
                    .name
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ));
        }
        Statement::Drop {
            if_exists: false,
            object_type,
            names,
            ..
        } => {
            let names: Vec<_> = names.iter().map(ToString::to_string).collect();
            flag(format!(
                "DROP {object_type} {} without IF EXISTS",
                names.join(", ")
            ));
        }
        Statement::AlterTable(alter) => {
            for operation in &alter.operations {
                match operation {
                    AlterTableOperation::AddColumn {
                        if_not_exists: false,
                        column_def,
                        ..
                    } => flag(format!(
                        "ADD COLUMN {} to {} without IF NOT EXISTS",
                        column_def.name, alter.name
                    )),
                    AlterTableOperation::DropColumn {
                        if_exists: false,
                        column_names,
                        ..
                    } => {
                        let names: Vec<_> = column_names.iter().map(ToString::to_string).collect();
                        flag(format!(
                            "DROP COLUMN {} of {} without IF EXISTS",
                            names.join(", "),
                            alter.name
                        ));
                    }
                    AlterTableOperation::DropConstraint {
                        if_exists: false,
                        name,
                        ..
                    } => flag(format!(
                        "DROP CONSTRAINT {name} of {} without IF EXISTS",
                        alter.name
                    )),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}
