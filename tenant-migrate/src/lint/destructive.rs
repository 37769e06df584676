//! Rules for changes that break code still running against the old schema:
//! `ban-drop-column`, `ban-drop-table`, `renaming-column`, `renaming-table`.

use sqlparser::ast::{AlterTableOperation, ObjectType, Statement};

use super::{Finding, Rule};

pub(super) fn check(statement: &Statement, line: u64, out: &mut Vec<Finding>) {
    match statement {
        Statement::AlterTable(alter) => {
            for operation in &alter.operations {
                match operation {
                    AlterTableOperation::DropColumn { column_names, .. } => {
                        for column in column_names {
                            out.push(Finding::new(
                                Rule::BanDropColumn,
                                line,
                                format!("drops column {column} of {}", alter.name),
                            ));
                        }
                    }
                    AlterTableOperation::RenameColumn {
                        old_column_name,
                        new_column_name,
                    } => out.push(Finding::new(
                        Rule::RenamingColumn,
                        line,
                        format!(
                            "renames column {old_column_name} of {} to {new_column_name}",
                            alter.name
                        ),
                    )),
                    AlterTableOperation::RenameTable { table_name } => out.push(Finding::new(
                        Rule::RenamingTable,
                        line,
                        format!("renames table {} {table_name}", alter.name),
                    )),
                    _ => {}
                }
            }
        }
        Statement::RenameTable(renames) => {
            for rename in renames {
                out.push(Finding::new(
                    Rule::RenamingTable,
                    line,
                    format!("renames table {} to {}", rename.old_name, rename.new_name),
                ));
            }
        }
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => {
            for name in names {
                out.push(Finding::new(
                    Rule::BanDropTable,
                    line,
                    format!("drops table {name}"),
                ));
            }
        }
        _ => {}
    }
}
