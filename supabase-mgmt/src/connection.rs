//! A project's connection URLs: the session connection for migrations (session
//! pooler or direct host) and the transaction pooler for the application.

use tenancy_core::{DatabaseTarget, DatabaseUrl, SecretString};
use url::Url;

use crate::{ManagementError, PoolMode, PoolerDatabaseType, Project, SupavisorConfig};

/// The port on which Supavisor serves session mode (and the direct host listens).
pub const SESSION_PORT: u16 = 5432;
/// The port on which Supavisor serves transaction mode.
pub const TRANSACTION_PORT: u16 = 6543;

/// How migrations (and anything else that needs a session) reach a project's database.
///
/// Supabase serves the direct host `db.<ref>.supabase.co` over IPv6 only, unless the
/// project buys the IPv4 add-on; many hosts (GitHub Actions, Vercel, Render) have no
/// IPv6. The session pooler is reachable over IPv4 and, unlike the transaction pooler,
/// keeps one server connection per client session, so advisory locks and prepared
/// statements work through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionConnection {
    /// Supavisor in session mode: the pooler host, port 5432, user `postgres.<ref>`
    /// and the database, all from the project's pooler config. Works from IPv4-only
    /// networks. The default.
    #[default]
    SessionPooler,
    /// The direct host `db.<ref>.supabase.co:5432` as `postgres`: for networks with
    /// IPv6, or projects with the IPv4 add-on.
    Direct,
}

/// The database a provisioner hands over: the session URL as `url` and the
/// transaction pooler as `transaction_pooler_url`.
pub(crate) fn database_target(
    project: &Project,
    poolers: &[SupavisorConfig],
    password: &SecretString,
    session: SessionConnection,
) -> Result<DatabaseTarget, ManagementError> {
    let url = match session {
        SessionConnection::Direct => direct_url(project, password)?,
        SessionConnection::SessionPooler => {
            let pooler = primaries(poolers)
                .next()
                .ok_or_else(|| ManagementError::NotReady {
                    project_ref: project.project_ref.clone(),
                    waited: std::time::Duration::ZERO,
                    last_status: "no pooler listed for the primary database yet".into(),
                })?;
            pooler_url(project, pooler, password, SESSION_PORT)?
        }
    };
    let mut target = DatabaseTarget::new(url).with_external_ref(project.project_ref.clone());
    let transaction = primaries(poolers).find(|c| c.pool_mode == PoolMode::Transaction);
    if let Some(pooler) = transaction {
        let port = Url::parse(&pooler.connection_string)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or(pooler.db_port);
        target = target.with_transaction_pooler_url(pooler_url(project, pooler, password, port)?);
    }
    Ok(target)
}

/// The poolers of the primary database. One Supavisor host serves session mode on
/// port 5432 and its configured mode (transaction, normally) on 6543; the Supabase
/// CLI takes the first entry and port 5432 for a session.
fn primaries(poolers: &[SupavisorConfig]) -> impl Iterator<Item = &SupavisorConfig> {
    poolers
        .iter()
        .filter(|c| c.database_type == PoolerDatabaseType::Primary)
}

/// The pooler's `connection_string` with the password filled in, on `port`.
fn pooler_url(
    project: &Project,
    pooler: &SupavisorConfig,
    password: &SecretString,
    port: u16,
) -> Result<DatabaseUrl, ManagementError> {
    let mut url = Url::parse(&pooler.connection_string)
        .map_err(|e| decode_error(project, "connection_string", format!("not a URL: {e}")))?;
    if url.set_port(Some(port)).is_err() || url.set_password(Some(password.expose_str())).is_err() {
        return Err(decode_error(
            project,
            "connection_string",
            "the URL cannot carry a port and password".into(),
        ));
    }
    DatabaseUrl::parse(url.as_str())
        .map_err(|e| decode_error(project, "connection_string", e.to_string()))
}

/// `postgres://postgres:<password>@<database.host>:5432/postgres`.
fn direct_url(project: &Project, password: &SecretString) -> Result<DatabaseUrl, ManagementError> {
    let host = project.database.as_ref().map_or_else(
        || format!("db.{}.supabase.co", project.project_ref),
        |db| db.host.clone(),
    );
    let built = Url::parse("postgres://postgres@localhost/postgres").and_then(|mut url| {
        url.set_host(Some(&host))?;
        // Only URLs without a host refuse a port or password; this one has a host.
        let _ = url.set_port(Some(SESSION_PORT));
        let _ = url.set_password(Some(password.expose_str()));
        Ok(url)
    });
    let url = built.map_err(|e| decode_error(project, "database.host", e.to_string()))?;
    DatabaseUrl::parse(url.as_str())
        .map_err(|e| decode_error(project, "database.host", e.to_string()))
}

fn decode_error(project: &Project, path: &str, message: String) -> ManagementError {
    ManagementError::Decode {
        endpoint: format!("project {}", project.project_ref),
        path: path.to_owned(),
        message,
    }
}
