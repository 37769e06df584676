//! The catalog of SQLite (`sqlite_schema` and its table-valued pragmas), read in
//! one query. Check constraints live only in a table's SQL text and are not
//! compared; columns, foreign keys, indexes, views and triggers are.

use sqlx::sqlite::SqliteConnection;

use super::{CatalogRow, SchemaScope};

/// `(kind, name, definition)` rows; `$1` the ignored tables (JSON array).
const OBJECTS: &str = r#"
WITH t AS (
    SELECT name, type, tbl_name, sql FROM sqlite_schema
    WHERE name NOT LIKE 'sqlite_%' AND tbl_name NOT IN (SELECT value FROM json_each($1))
)
SELECT 'table' AS kind, 'main.' || t.name AS name, '' AS definition FROM t WHERE t.type = 'table'
UNION ALL
SELECT 'column', 'main.' || t.name || '.' || p.name,
       lower(p.type)
       || CASE WHEN p."notnull" THEN ' not null' ELSE '' END
       || COALESCE(' default ' || p.dflt_value, '')
       || CASE WHEN p.pk > 0 THEN ' primary key ' || p.pk ELSE '' END
  FROM t JOIN pragma_table_info(t.name) p WHERE t.type = 'table'
UNION ALL
SELECT 'constraint', 'main.' || t.name || '.fk' || f.id || '.' || f.seq,
       f."from" || ' references ' || f."table" || '(' || COALESCE(f."to", '') || ') on update '
       || f.on_update || ' on delete ' || f.on_delete
  FROM t JOIN pragma_foreign_key_list(t.name) f WHERE t.type = 'table'
UNION ALL
SELECT t.type, 'main.' || t.name, COALESCE(t.sql, '')
  FROM t WHERE t.type IN ('index', 'view', 'trigger')
UNION ALL
SELECT 'index', 'main.' || t.name || '(' || (SELECT group_concat(name, ', ') FROM pragma_index_info(l.name)) || ')',
       CASE WHEN l."unique" THEN 'unique ' ELSE '' END
       || CASE l.origin WHEN 'pk' THEN 'primary key' WHEN 'u' THEN 'constraint' ELSE l.origin END
  FROM t JOIN pragma_index_list(t.name) l ON l.name LIKE 'sqlite_autoindex_%' WHERE t.type = 'table'
"#;

/// The catalog rows of the database's objects, in one round trip.
pub(super) async fn rows(
    conn: &mut SqliteConnection,
    scope: &SchemaScope,
) -> Result<Vec<CatalogRow>, sqlx::Error> {
    sqlx::query_as(OBJECTS)
        .bind(scope.ignored_json())
        .fetch_all(conn)
        .await
}
