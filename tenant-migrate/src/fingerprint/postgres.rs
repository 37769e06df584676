//! The catalog of PostgreSQL: the detailed description of a schema in one query,
//! and its cheap digest in another.
//!
//! On the fresh connection a survey opens per tenant, what a catalog query costs is
//! mostly parsing and planning against cold caches, and running the deparse
//! functions (`pg_get_indexdef`, `pg_get_constraintdef`, …) on them. The digest
//! query reads the raw catalog rows instead (a single table per branch, no joins,
//! no parameters, one simple-protocol round trip), deparses only what has no raw
//! form that is the same in every database (defaults, check expressions, views,
//! triggers, expression and partial indexes), and the rows are mapped and hashed
//! here: object identifiers become names, so that two databases with the same
//! schema have the same digest whatever identifiers their objects were given.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;

use super::{CatalogRow, SchemaScope};
use crate::history::{HistoryRow, HistorySnapshot};

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

/// The statements a digest is read with, sent together in one simple-protocol
/// request; each row starts with its kind. Objects created by users have
/// identifiers from 16384 up (`FirstNormalObjectId`); those below belong to the
/// system schemas, which a digest never covers.
///
/// On a new backend what these cost is mostly parsing and planning against cold
/// caches, not reading rows, so they are written for that: constants typed like
/// the columns they are compared with (`'16384'` is an `oid`, where `16384` would
/// send the parser through every `>=` operator), no joins, no sorting, as few
/// columns and functions as the digest needs (the planner looks up statistics for
/// each column a statement reads), and namespaces named by `regnamespace` rather
/// than read from `pg_namespace`.
///
/// - `r`: relation `oid`, its namespace as the server quotes it, name, kind, and
///   the view's definition or the index's access method, tablespace and storage
///   options;
/// - `c`: column's relation, number, name, type, nullability;
/// - `d`: default's relation, column number, expression (deparsed against its
///   table only when it reads columns, as a generated column's does: any other
///   default reads the same without opening its table);
/// - `k`: constraint's relation, name, index, referenced table and columns, check
///   expression, then what else its definition depends on ([`KNOWN_COLUMNS`]);
/// - `i`: index's table, index, its whole definition when it has expressions, a
///   predicate, or an operator class or collation of its own, then what else its
///   definition depends on ([`KNOWN_COLUMNS`]);
/// - `s`: sequence, type, increment;
/// - `g`: trigger's table, name, definition;
/// - `f`: function's namespace as the server quotes it, name, kind, argument
///   types, all argument types, modes and names, result type, whether it returns a
///   set, body hash (raw columns rather than `pg_get_function_*`: cheaper per
///   function, for schemas that have thousands);
/// - `e`: enum type's schema and qualified name as the server quotes them, label,
///   sort order.
const DIGEST_STATEMENTS: &[&str] = &[
    "SELECT 'r', c.oid, c.relnamespace::regnamespace, c.relname, c.relkind, \
       CASE c.relkind WHEN 'i' THEN concat(c.relam, '|', c.reltablespace, '|', c.reloptions) \
         WHEN 'v' THEN pg_get_viewdef(c.oid, true) \
         WHEN 'I' THEN concat(c.relam, '|', c.reltablespace, '|', c.reloptions) \
         WHEN 'm' THEN pg_get_viewdef(c.oid, true) END \
     FROM pg_class c WHERE c.oid >= '16384'",
    "SELECT 'c', a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull \
     FROM pg_attribute a WHERE a.attrelid >= '16384' AND a.attnum > '0' AND NOT a.attisdropped",
    "SELECT 'd', d.adrelid, d.adnum, \
       pg_get_expr(d.adbin, CASE WHEN d.adbin::text LIKE '%{VAR %' THEN d.adrelid ELSE '0' END) \
     FROM pg_attrdef d WHERE d.adrelid >= '16384'",
    "SELECT 'k', k.conrelid, k.conname, k.conindid, k.confrelid, k.confkey, pg_get_expr(k.conbin, k.conrelid), \
     {constraint} FROM pg_constraint k WHERE k.conrelid >= '16384'",
    "SELECT 'i', x.indrelid, x.indexrelid, \
       CASE WHEN x.indexprs IS NOT NULL OR x.indpred IS NOT NULL \
                 OR '16384' <= ANY (x.indclass) OR '16384' <= ANY (x.indcollation) \
            THEN pg_get_indexdef(x.indexrelid) END, \
     {index} FROM pg_index x WHERE x.indrelid >= '16384'",
    "SELECT 's', q.seqrelid, q.seqtypid, q.seqincrement FROM pg_sequence q WHERE q.seqrelid >= '16384'",
    "SELECT 'g', g.tgrelid, g.tgname, pg_get_triggerdef(g.oid) FROM pg_trigger g \
     WHERE g.tgrelid >= '16384' AND NOT g.tgisinternal",
    "SELECT 'f', p.pronamespace::regnamespace, p.proname, p.prokind, p.proargtypes::oid[]::regtype[], \
       p.proallargtypes::regtype[], p.proargmodes, p.proargnames, p.prorettype::regtype, p.proretset, md5(p.prosrc) \
     FROM pg_proc p WHERE p.oid >= '16384'",
    "SELECT 'e', o.schema, o.identity, e.enumlabel, e.enumsortorder \
     FROM pg_enum e, pg_identify_object('1247', e.enumtypid, '0') AS o WHERE e.enumtypid >= '16384'",
];

/// The migration history, as rows of kind `h`: database name, then version,
/// success and checksum (hex) of each row (`NULL`s for an empty table), in no
/// particular order (sorting here would cost the server more than the client).
/// Fails with `42P01` when the table does not exist yet.
pub(super) const HISTORY: &str = "SELECT 'h', current_database(), h.version, h.success, \
     encode(h.checksum, 'hex') FROM (SELECT 1) AS one LEFT JOIN _sqlx_migrations AS h ON TRUE";

/// Whether `error` says a table does not exist.
pub(super) fn is_undefined_table(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "42P01")
}

/// The history read by [`HISTORY`] among `rows`.
pub(super) fn history(rows: &[PgRow]) -> Result<HistorySnapshot, sqlx::Error> {
    let mut snapshot = HistorySnapshot {
        table_exists: true,
        ..HistorySnapshot::default()
    };
    for row in rows {
        if RawRow::kind(row)? != "h" {
            continue;
        }
        let row = RawRow::read(row)?;
        snapshot
            .database
            .get_or_insert_with(|| row.get(0).to_owned());
        if row.get(1).is_empty() {
            continue;
        }
        let decode = |what: &str, error: String| {
            sqlx::Error::Decode(format!("history row {what}: {error}").into())
        };
        let version = row
            .get(1)
            .parse()
            .map_err(|e: std::num::ParseIntError| decode("version", e.to_string()))?;
        let checksum = hex::decode(row.get(3)).map_err(|e| decode("checksum", e.to_string()))?;
        snapshot.rows.push(HistoryRow {
            version,
            success: row.get(2) == "t",
            checksum,
        });
    }
    snapshot.rows.sort_unstable_by_key(|row| row.version);
    Ok(snapshot)
}

/// What else of a constraint's and an index's row their definitions depend on, on
/// the servers whose catalogs this release knows (12 to 14): `(constraint, index)`.
const KNOWN_COLUMNS: (&str, &str) = (
    "k.contype, k.condeferrable, k.condeferred, k.convalidated, k.connoinherit, k.conkey, \
     k.confupdtype, k.confdeltype, k.confmatchtype, k.conexclop",
    "x.indkey, x.indnkeyatts, x.indisunique, x.indclass, x.indcollation, x.indoption",
);

/// The same from PostgreSQL 15 to 17: `ON DELETE SET NULL (columns)`, `NULLS NOT
/// DISTINCT` too.
const KNOWN_COLUMNS_15: (&str, &str) = (
    "k.contype, k.condeferrable, k.condeferred, k.convalidated, k.connoinherit, k.conkey, \
     k.confupdtype, k.confdeltype, k.confmatchtype, k.conexclop, k.confdelsetcols",
    "x.indkey, x.indnkeyatts, x.indisunique, x.indclass, x.indcollation, x.indoption, \
     x.indnullsnotdistinct",
);

/// On a server this release does not know: every column of the rows but the
/// identifiers (and what varies with the data), whatever columns it has.
const ALL_COLUMNS: (&str, &str) = (
    "(to_jsonb(k) - '{oid,conrelid,connamespace,contypid,conindid,conparentid,confrelid,confkey,conbin}'::text[])::text",
    "(to_jsonb(x) - '{indexrelid,indrelid,indexprs,indpred,indcheckxmin,indisclustered,indisreplident}'::text[])::text",
);

/// Where the columns of [`KNOWN_COLUMNS`] start in a `k` row's fields (after its kind).
const CONSTRAINT_COLUMNS: usize = 6;
/// Where the columns of [`KNOWN_COLUMNS`] start in an `i` row's fields.
const INDEX_COLUMNS: usize = 3;

/// [`DIGEST_STATEMENTS`] for a server of version `version` (`server_version_num`),
/// as one request: built once per kind of server, then shared.
fn digest_request(version: Option<u32>) -> &'static str {
    static REQUESTS: [OnceLock<String>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let (slot, columns) = match version {
        Some(120_000..=149_999) => (0, KNOWN_COLUMNS),
        Some(150_000..=179_999) => (1, KNOWN_COLUMNS_15),
        _ => (2, ALL_COLUMNS),
    };
    REQUESTS[slot].get_or_init(|| build_request(columns))
}

/// [`DIGEST_STATEMENTS`] with these `(constraint, index)` columns, joined.
fn build_request((constraint, index): (&str, &str)) -> String {
    DIGEST_STATEMENTS
        .iter()
        .map(|statement| {
            statement
                .replace("{constraint}", constraint)
                .replace("{index}", index)
        })
        .collect::<Vec<_>>()
        .join(";\n")
}

/// The digest of the objects in `scope` (see [`DIGEST_STATEMENTS`]), in one
/// simple-protocol round trip: 32 bytes that differ whenever the detailed
/// description ([`rows`]) differs.
pub(super) async fn digest(
    conn: &mut PgConnection,
    scope: &SchemaScope,
) -> Result<[u8; 32], sqlx::Error> {
    digest_after(conn, scope, None)
        .await
        .map(|(digest, _)| digest)
}

/// The digest of `scope`, after `first` (a statement whose rows start with a kind
/// of their own) in the same request: the digest, and every row read.
pub(super) async fn digest_after(
    conn: &mut PgConnection,
    scope: &SchemaScope,
    first: Option<&str>,
) -> Result<([u8; 32], Vec<PgRow>), sqlx::Error> {
    let mut request = first.map(|s| format!("{s};\n")).unwrap_or_default();
    request.push_str(digest_request(conn.server_version_num()));
    let rows = sqlx::Executor::fetch_all(&mut *conn, request.as_str()).await?;
    let mut catalog = RawCatalog::default();
    for row in &rows {
        catalog.add(RawRow::read(row)?);
    }
    let digest = catalog.digest(scope);
    drop(catalog);
    Ok((digest, rows))
}

/// One row of [`DIGEST_STATEMENTS`], as text (`""` for `NULL`).
struct RawRow<'r> {
    kind: &'r str,
    fields: Vec<&'r str>,
}

impl<'r> RawRow<'r> {
    /// The kind of `row` alone.
    fn kind(row: &'r PgRow) -> Result<&'r str, sqlx::Error> {
        Ok(row.try_get_unchecked::<Option<&str>, _>(0)?.unwrap_or(""))
    }

    fn read(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        // Simple-protocol results are text whatever their type.
        let text = |i: usize| -> Result<&'r str, sqlx::Error> {
            Ok(row.try_get_unchecked::<Option<&str>, _>(i)?.unwrap_or(""))
        };
        let fields = (1..row.len()).map(text).collect::<Result<_, _>>()?;
        Ok(Self {
            kind: text(0)?,
            fields,
        })
    }

    /// Field `i` (`""` past the end).
    fn get(&self, i: usize) -> &'r str {
        self.fields.get(i).copied().unwrap_or("")
    }

    /// Fields `from..`, joined.
    fn rest(&self, from: usize) -> String {
        self.fields.get(from..).unwrap_or_default().join("|")
    }
}

/// A namespace as `regnamespace` prints it, as its plain name: quoted names lose
/// their quotes and have their doubled quotes halved; others are printed as they are.
fn unquoted(namespace: &str) -> Cow<'_, str> {
    match namespace
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) => Cow::Owned(inner.replace("\"\"", "\"")),
        None => Cow::Borrowed(namespace),
    }
}

/// A relation: its schema's plain name, name, kind, what else its row says, and
/// its qualified name as the server quotes it.
struct Relation<'r> {
    schema: Cow<'r, str>,
    name: &'r str,
    kind: &'r str,
    extra: &'r str,
    qualified: String,
}

/// The rows of one database, identifiers still raw, before the scope is applied.
#[derive(Default)]
struct RawCatalog<'r> {
    relations: HashMap<&'r str, Relation<'r>>,
    /// `(relation, number)` to name, type and nullability.
    columns: HashMap<(&'r str, &'r str), [&'r str; 3]>,
    defaults: HashMap<(&'r str, &'r str), &'r str>,
    /// Rows whose meaning needs the maps above: kept until they are complete.
    rest: Vec<RawRow<'r>>,
}

impl<'r> RawCatalog<'r> {
    fn add(&mut self, row: RawRow<'r>) {
        let field = |i| row.get(i);
        match row.kind {
            // The history's rows, read apart.
            "h" => {}
            "r" => {
                let relation = Relation {
                    schema: unquoted(field(1)),
                    name: field(2),
                    kind: field(3),
                    extra: field(4),
                    qualified: format!("{}.{}", field(1), field(2)),
                };
                self.relations.insert(field(0), relation);
            }
            "c" => {
                self.columns
                    .insert((field(0), field(1)), [field(2), field(3), field(4)]);
            }
            "d" => {
                self.defaults.insert((field(0), field(1)), field(2));
            }
            _ => self.rest.push(row),
        }
    }

    /// The relation `oid` if the scope covers it (its schema, not an ignored
    /// table).
    fn scoped(&self, oid: &str, scope: &SchemaScope) -> Option<&Relation<'r>> {
        let relation = self.relations.get(oid)?;
        let covered = scope.schema_names().contains(relation.schema.as_ref())
            && !scope.ignored_tables().contains(relation.name);
        covered.then_some(relation)
    }

    /// The qualified name of any relation, scoped or not (empty for none).
    fn qualified(&self, oid: &str) -> &str {
        match self.relations.get(oid) {
            Some(relation) => &relation.qualified,
            None if oid == "0" || oid.is_empty() => "",
            None => "?",
        }
    }

    /// The names of the columns `numbers` (`{1,2}`) of relation `oid`.
    fn column_names(&self, oid: &str, numbers: &str) -> String {
        let numbers = numbers.trim_start_matches('{').trim_end_matches('}');
        numbers
            .split(',')
            .filter(|n| !n.is_empty())
            .map(|n| self.columns.get(&(oid, n)).map_or("?", |[name, ..]| *name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The canonical lines of the objects in `scope`, sorted, hashed.
    fn digest(&self, scope: &SchemaScope) -> [u8; 32] {
        let mut owned: Vec<Vec<String>> = Vec::new();
        let mut lines: BTreeSet<Vec<&str>> = BTreeSet::new();
        for oid in self.relations.keys() {
            if let Some(r) = self.scoped(oid, scope) {
                lines.insert(vec!["relation", &r.schema, r.name, r.kind, r.extra]);
            }
        }
        for ((oid, number), [name, type_name, not_null]) in &self.columns {
            let Some(r) = self.scoped(oid, scope) else {
                continue;
            };
            if matches!(r.kind, "r" | "p") {
                let default = self.defaults.get(&(*oid, *number)).copied().unwrap_or("");
                lines.insert(vec![
                    "column", &r.schema, r.name, name, type_name, not_null, default,
                ]);
            }
        }
        for row in &self.rest {
            self.add_line(row, scope, &mut lines, &mut owned);
        }
        for line in &owned {
            lines.insert(line.iter().map(String::as_str).collect());
        }
        hash_lines(&lines)
    }

    /// The line of a row kept in `rest`, if the scope covers its object: into
    /// `lines` when it borrows only rows, into `owned` when it needs text of its own.
    fn add_line<'a>(
        &'a self,
        row: &'a RawRow<'r>,
        scope: &SchemaScope,
        lines: &mut BTreeSet<Vec<&'a str>>,
        owned: &mut Vec<Vec<String>>,
    ) {
        let field = |i| row.get(i);
        if row.kind == "e" {
            if scope.schema_names().contains(unquoted(field(0)).as_ref()) {
                lines.insert(vec!["enum", field(1), field(2), field(3)]);
            }
            return;
        }
        if row.kind == "f" {
            let schema = unquoted(field(0));
            if scope.schema_names().contains(schema.as_ref()) {
                owned.push(vec![
                    "function".into(),
                    schema.into_owned(),
                    field(1).into(),
                    row.rest(2),
                ]);
            }
            return;
        }
        let Some(r) = self.scoped(field(0), scope) else {
            return;
        };
        match row.kind {
            "k" => owned.push(vec![
                "constraint".into(),
                r.schema.to_string(),
                r.name.into(),
                field(1).into(),
                self.qualified(field(2)).into(),
                self.qualified(field(3)).into(),
                self.column_names(field(3), field(4)),
                field(5).into(),
                row.rest(CONSTRAINT_COLUMNS),
            ]),
            "i" => owned.push(vec![
                "index".into(),
                self.qualified(field(1)).into(),
                r.name.into(),
                field(2).into(),
                row.rest(INDEX_COLUMNS),
            ]),
            "s" => {
                lines.insert(vec!["sequence", &r.schema, r.name, field(1), field(2)]);
            }
            "g" => {
                lines.insert(vec!["trigger", &r.schema, r.name, field(1), field(2)]);
            }
            _ => {}
        }
    }
}

/// The SHA-256 of `lines`, each part length-prefixed.
fn hash_lines(lines: &BTreeSet<Vec<&str>>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for line in lines {
        hash.update(line.len().to_le_bytes());
        for part in line {
            hash.update(part.len().to_le_bytes());
            hash.update(part.as_bytes());
        }
    }
    hash.finalize().into()
}
