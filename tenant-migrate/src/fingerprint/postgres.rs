//! The catalog of PostgreSQL, read in one query.

use sqlx::postgres::PgConnection;

use super::{CatalogRow, SchemaScope};

/// Every object of the schemas in `$1` (JSON array), leaving out the tables in `$2`
/// (JSON array) and what hangs off them: `(kind, name, definition)` rows.
const OBJECTS: &str = r#"
WITH s AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname IN (SELECT jsonb_array_elements_text($1::jsonb))
), ignored AS (SELECT jsonb_array_elements_text($2::jsonb) AS relname),
t AS (
    SELECT c.oid, c.relname, s.nspname, c.relkind FROM pg_class c JOIN s ON s.oid = c.relnamespace
    WHERE c.relname NOT IN (SELECT relname FROM ignored)
)
SELECT 'table' AS kind, t.nspname || '.' || t.relname AS name,
       CASE t.relkind WHEN 'p' THEN 'partitioned' ELSE '' END AS definition
  FROM t WHERE t.relkind IN ('r', 'p')
UNION ALL
SELECT 'column', t.nspname || '.' || t.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || COALESCE(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
  FROM t JOIN pg_attribute a ON a.attrelid = t.oid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE t.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', t.nspname || '.' || t.relname || '.' || con.conname, pg_get_constraintdef(con.oid)
  FROM t JOIN pg_constraint con ON con.conrelid = t.oid
UNION ALL
SELECT 'index', t.nspname || '.' || i.relname, pg_get_indexdef(i.oid)
  FROM t JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid
UNION ALL
SELECT 'view', t.nspname || '.' || t.relname, pg_get_viewdef(t.oid, true)
  FROM t WHERE t.relkind IN ('v', 'm')
UNION ALL
SELECT 'sequence', t.nspname || '.' || t.relname,
       format_type(q.seqtypid, NULL) || ' increment ' || q.seqincrement
  FROM t JOIN pg_sequence q ON q.seqrelid = t.oid
UNION ALL
SELECT 'trigger', t.nspname || '.' || t.relname || '.' || g.tgname, pg_get_triggerdef(g.oid)
  FROM t JOIN pg_trigger g ON g.tgrelid = t.oid WHERE NOT g.tgisinternal
UNION ALL
SELECT 'function', s.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       'returns ' || COALESCE(pg_get_function_result(p.oid), 'nothing') || ' body ' || md5(p.prosrc)
  FROM pg_proc p JOIN s ON s.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = p.oid AND e.deptype = 'e')
UNION ALL
SELECT 'enum', s.nspname || '.' || ty.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
  FROM pg_type ty JOIN s ON s.oid = ty.typnamespace JOIN pg_enum e ON e.enumtypid = ty.oid
  GROUP BY s.nspname, ty.typname
"#;

/// The catalog rows of the objects in `scope`, in one round trip.
pub(super) async fn rows(
    conn: &mut PgConnection,
    scope: &SchemaScope,
) -> Result<Vec<CatalogRow>, sqlx::Error> {
    let schemas = serde_json::to_string(scope.schema_names()).unwrap_or_else(|_| "[]".into());
    sqlx::query_as(OBJECTS)
        .bind(schemas)
        .bind(scope.ignored_json())
        .fetch_all(conn)
        .await
}
