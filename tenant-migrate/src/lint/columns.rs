//! Rules for column changes that lock or break writers: `changing-column-type`,
//! `adding-required-field`. Tables created in the same migration are exempt.

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnDef, ColumnOption, DataType, Statement,
};

use super::context::Context;
use super::{Finding, Rule};

pub(super) fn check(statement: &Statement, context: &Context, line: u64, out: &mut Vec<Finding>) {
    let Statement::AlterTable(alter) = statement else {
        return;
    };
    if context.is_new_table(&alter.name) {
        return;
    }
    for operation in &alter.operations {
        match operation {
            AlterTableOperation::AlterColumn {
                column_name,
                op: AlterColumnOperation::SetDataType { data_type, .. },
            } => out.push(Finding::new(
                Rule::ChangingColumnType,
                line,
                format!(
                    "changes the type of {}.{column_name} to {data_type}",
                    alter.name
                ),
            )),
            AlterTableOperation::AddColumn { column_def, .. }
                if is_required_without_default(column_def) =>
            {
                out.push(Finding::new(
                    Rule::AddingRequiredField,
                    line,
                    format!(
                        "adds NOT NULL column {} to {} without a default",
                        column_def.name, alter.name
                    ),
                ))
            }
            _ => {}
        }
    }
}

/// `NOT NULL` (or `PRIMARY KEY`) with no `DEFAULT`, identity, generated value or serial type.
fn is_required_without_default(column: &ColumnDef) -> bool {
    let options = || column.options.iter().map(|o| &o.option);
    let required =
        options().any(|o| matches!(o, ColumnOption::NotNull | ColumnOption::PrimaryKey(_)));
    let filled = options().any(|o| {
        matches!(
            o,
            ColumnOption::Default(_) | ColumnOption::Generated { .. } | ColumnOption::Identity(_)
        )
    });
    required && !filled && !is_serial(&column.data_type)
}

fn is_serial(data_type: &DataType) -> bool {
    let name = data_type.to_string().to_ascii_lowercase();
    matches!(
        name.as_str(),
        "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
    )
}
