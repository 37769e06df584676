//! A fixed list of tenant databases, such as a fleet file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use tenancy_core::{
    validate_tag, DatabaseTarget, DatabaseUrl, DirectoryError, TenantFilter, TenantId,
};

use super::members::{FleetMember, IntoFleet, TenantFleet};

/// Why a fleet file could not be read. Messages name the file and line, and never
/// repeat a database URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetFileError {
    /// The file could not be read.
    #[error("cannot read the fleet file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The header is not `id,database_url` with an optional `tags` column.
    #[error("{path}: the header must name the columns `id` and `database_url`, and optionally `tags` (found `{found}`)")]
    Header {
        /// The file.
        path: String,
        /// The header as found.
        found: String,
    },
    /// A row is not valid CSV, or one of its values is invalid.
    #[error("{path}: line {line}: {message}")]
    Row {
        /// The file.
        path: String,
        /// The line (1 is the header).
        line: u64,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Two rows name the same tenant.
    #[error("{path}: line {line}: tenant `{id}` is listed twice (first on line {first}); keep one row per tenant")]
    Duplicate {
        /// The file.
        path: String,
        /// The second row's line.
        line: u64,
        /// The first row's line.
        first: u64,
        /// The tenant.
        id: TenantId,
    },
    /// The file lists no tenant.
    #[error("{path} lists no tenant; add rows `id,database_url[,tags]` below the header")]
    Empty {
        /// The file.
        path: String,
    },
}

/// A fixed fleet of tenant databases, kept in id order: what the `migrate`
/// command reads from its `--tenants` file, or what a host builds from its own
/// inventory.
///
/// The file is CSV with a header naming `id` and `database_url`, and optionally
/// `tags` (separated by `;`); fields may be quoted, and lines starting with `#`
/// are comments.
///
/// ```
/// use tenant_migrate::FleetList;
///
/// let csv = "id,database_url,tags\n\
///            acme,postgres://app@db.example.com/acme,eu;staging\n\
///            \"globex\",\"sqlite:tenants/globex.db\",\n";
/// let fleet = FleetList::from_csv(csv.as_bytes(), "tenants.csv")?;
/// assert_eq!(fleet.len(), 2);
/// # Ok::<(), tenant_migrate::FleetFileError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetList {
    members: BTreeMap<TenantId, FleetMember>,
}

impl FleetList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a member.
    pub fn insert(&mut self, member: FleetMember) {
        self.members.insert(member.id.clone(), member);
    }

    /// The members, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &FleetMember> {
        self.members.values()
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Reads a fleet file.
    pub fn from_csv_path(path: &Path) -> Result<Self, FleetFileError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| FleetFileError::Read {
            path: name.clone(),
            source,
        })?;
        Self::from_csv(file, &name)
    }

    /// Reads fleet CSV from `reader`; `name` is how errors refer to it.
    pub fn from_csv(reader: impl std::io::Read, name: &str) -> Result<Self, FleetFileError> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .flexible(true)
            .from_reader(reader);
        let columns = Columns::find(&mut csv, name)?;
        let mut list = Self::new();
        let mut lines = BTreeMap::new();
        for record in csv.records() {
            let row_error = |line: u64, message: String| FleetFileError::Row {
                path: name.to_owned(),
                line,
                message,
            };
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, csv::Position::line);
                row_error(line, "not valid CSV; quote fields that hold commas".into())
            })?;
            let line = record.position().map_or(0, csv::Position::line);
            if record.iter().all(str::is_empty) {
                continue;
            }
            let member = columns.member(&record).map_err(|m| row_error(line, m))?;
            if let Some(first) = lines.insert(member.id.clone(), line) {
                return Err(FleetFileError::Duplicate {
                    path: name.to_owned(),
                    line,
                    first,
                    id: member.id,
                });
            }
            list.insert(member);
        }
        if list.is_empty() {
            return Err(FleetFileError::Empty {
                path: name.to_owned(),
            });
        }
        Ok(list)
    }
}

/// Where each column is in the file.
struct Columns {
    id: usize,
    url: usize,
    tags: Option<usize>,
    count: usize,
}

impl Columns {
    fn find<R: std::io::Read>(
        csv: &mut csv::Reader<R>,
        name: &str,
    ) -> Result<Self, FleetFileError> {
        let header = csv.headers().map_err(|_| FleetFileError::Header {
            path: name.to_owned(),
            found: String::new(),
        })?;
        let names: Vec<&str> = header.iter().collect();
        let at = |column: &str| names.iter().position(|n| *n == column);
        let known = names
            .iter()
            .all(|n| matches!(*n, "id" | "database_url" | "tags"));
        match (at("id"), at("database_url")) {
            (Some(id), Some(url)) if known => Ok(Self {
                id,
                url,
                tags: at("tags"),
                count: names.len(),
            }),
            _ => Err(FleetFileError::Header {
                path: name.to_owned(),
                found: names.join(","),
            }),
        }
    }

    fn member(&self, record: &csv::StringRecord) -> Result<FleetMember, String> {
        if record.len() > self.count {
            return Err(format!(
                "{} fields where the header has {}; separate tags with `;`, or quote the field",
                record.len(),
                self.count
            ));
        }
        let field = |index: usize| record.get(index).unwrap_or("");
        let id = TenantId::new(field(self.id)).map_err(|e| e.to_string())?;
        if field(self.url).trim().is_empty() {
            return Err(format!(
                "tenant `{id}` has no database_url; give each row `id,database_url[,tags]`"
            ));
        }
        let url = DatabaseUrl::parse(field(self.url)).map_err(|e| format!("database_url: {e}"))?;
        let mut member = FleetMember::new(id, DatabaseTarget::new(url));
        let tags = self.tags.map(field).unwrap_or("");
        for tag in tags.split(';').map(str::trim).filter(|t| !t.is_empty()) {
            validate_tag(tag).map_err(|e| e.to_string())?;
            member = member.with_tag(tag);
        }
        Ok(member)
    }
}

#[async_trait]
impl TenantFleet for FleetList {
    async fn members(&self, filter: &TenantFilter) -> Result<Vec<FleetMember>, DirectoryError> {
        let start = filter.after_id().map_or(std::ops::Bound::Unbounded, |id| {
            std::ops::Bound::Excluded(id.clone())
        });
        let limit = filter.page_limit().map_or(usize::MAX, |n| n as usize);
        Ok(self
            .members
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, member)| member)
            .filter(|m| filter.accepts(&m.id, &m.tags))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn database(&self, id: &TenantId) -> Result<Option<DatabaseTarget>, DirectoryError> {
        Ok(self.members.get(id).and_then(|m| m.database.clone()))
    }
}

impl IntoFleet for FleetList {
    fn into_fleet(self) -> Arc<dyn TenantFleet> {
        Arc::new(self)
    }
}

impl FromIterator<FleetMember> for FleetList {
    fn from_iter<I: IntoIterator<Item = FleetMember>>(iter: I) -> Self {
        let mut list = Self::new();
        for member in iter {
            list.insert(member);
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<FleetList, FleetFileError> {
        FleetList::from_csv(text.as_bytes(), "tenants.csv")
    }

    #[test]
    fn quoted_fields_tags_and_comments_are_read() {
        let fleet = read(
            "# the fleet\nid,database_url,tags\n\
             acme,postgres://u:pw@db/acme,eu;beta\n\
             \"globex\",\"postgres://u:pw@db/globex?options=-c%20a=1,2\",\n\n",
        )
        .unwrap();
        let members: Vec<_> = fleet.iter().collect();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].tags.len(), 2);
        assert!(members[1].tags.is_empty());
        let url = members[1].database.as_ref().unwrap().url.expose();
        assert!(url.ends_with("=1,2"), "{url}");
    }

    #[test]
    fn a_byte_order_mark_and_a_comma_in_a_quoted_password_are_read() {
        let fleet =
            read("\u{feff}id,database_url\nacme,\"postgres://app:pa,ss@db/acme\"\n").unwrap();
        let member = fleet.iter().next().unwrap();
        assert_eq!(member.id.as_str(), "acme");
        let url = member.database.as_ref().unwrap().url.expose();
        assert!(url.contains("pa,ss") || url.contains("pa%2Css"), "{url}");
    }

    #[test]
    fn columns_may_come_in_any_order_and_tags_are_optional() {
        let fleet = read("database_url,id\nsqlite:a.db,alpha\n").unwrap();
        assert_eq!(fleet.iter().next().unwrap().id.as_str(), "alpha");
    }

    #[test]
    fn bad_rows_name_their_line_and_never_echo_urls() {
        let error = read("id,database_url\nacme,mysql://u:secret@db/acme\n").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(!text.contains("secret"), "{text}");

        let error = read("id,database_url\nokay,sqlite:ok.db\nAcme!,sqlite:x.db\n").unwrap_err();
        assert!(error.to_string().contains("line 3"), "{error}");

        let error = read("id,database_url\nacme,postgres://db/acme,eu\n").unwrap_err();
        assert!(error.to_string().contains("separate tags"), "{error}");

        let error = read("id,database_url\nacme\n").unwrap_err();
        assert!(
            error.to_string().contains("line 2") && error.to_string().contains("no database_url"),
            "{error}"
        );

        let error = read("id,database_url\nalpha,sqlite:a.db\nalpha,sqlite:b.db\n").unwrap_err();
        assert!(
            matches!(
                error,
                FleetFileError::Duplicate {
                    line: 3,
                    first: 2,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_misspelt_header_or_an_empty_file_is_refused() {
        assert!(matches!(
            read("id,datbase_url\nalpha,sqlite:a.db\n"),
            Err(FleetFileError::Header { .. })
        ));
        assert!(matches!(
            read("id,database_url,tags,extra\n"),
            Err(FleetFileError::Header { .. })
        ));
        assert!(matches!(
            read("id,database_url\n"),
            Err(FleetFileError::Empty { .. })
        ));
    }

    #[tokio::test]
    async fn pages_and_filters_like_a_directory() {
        let fleet: FleetList = (0..5)
            .map(|i| {
                let id = TenantId::new(format!("t{i:02}")).unwrap();
                let url = DatabaseUrl::parse(&format!("sqlite:t{i:02}.db")).unwrap();
                let member = FleetMember::new(id, DatabaseTarget::new(url));
                if i % 2 == 0 {
                    member.with_tag("even")
                } else {
                    member
                }
            })
            .collect();
        let first = fleet.members(&TenantFilter::all().limit(2)).await.unwrap();
        let ids: Vec<_> = first.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["t00", "t01"]);
        let next = fleet
            .members(
                &TenantFilter::all()
                    .with_tag("even")
                    .after(first[1].id.clone()),
            )
            .await
            .unwrap();
        let ids: Vec<_> = next.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["t02", "t04"]);
    }
}
