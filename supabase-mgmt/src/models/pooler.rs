use serde::Deserialize;

tenancy_core::open_enum! {
    /// Which database a pooler serves (`SupavisorConfigResponse.database_type`).
    pub enum PoolerDatabaseType {
        /// `PRIMARY`.
        Primary => "PRIMARY",
        /// `READ_REPLICA`.
        ReadReplica => "READ_REPLICA",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

tenancy_core::open_enum! {
    /// The pooling mode (`SupavisorConfigResponse.pool_mode`).
    pub enum PoolMode {
        /// `transaction`: a server connection per transaction (port 6543 on Supabase).
        Transaction => "transaction",
        /// `session`: a server connection per client session.
        Session => "session",
    }
    /// A mode this version of the crate does not know, kept as sent.
    other Unknown
}

/// A project's connection pooler (`SupavisorConfigResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SupavisorConfig {
    /// The pooler's identifier.
    pub identifier: String,
    /// The database it serves.
    pub database_type: PoolerDatabaseType,
    /// Whether it authenticates with SCRAM.
    pub is_using_scram_auth: bool,
    /// The user to connect as (`postgres.<ref>`).
    pub db_user: String,
    /// The pooler host.
    pub db_host: String,
    /// The pooler port.
    pub db_port: u16,
    /// The database name.
    pub db_name: String,
    /// The connection string, with a password placeholder.
    pub connection_string: String,
    /// The pool size, if set.
    #[serde(default)]
    pub default_pool_size: Option<u32>,
    /// The maximum number of client connections, if set.
    #[serde(default)]
    pub max_client_conn: Option<u32>,
    /// The pooling mode.
    pub pool_mode: PoolMode,
}
