use serde::Deserialize;

tenancy_core::open_enum! {
    /// A service whose health the API reports (`V1ServiceHealthResponse.name`, and the
    /// `services` query parameter of `GET /v1/projects/{ref}/health`).
    pub enum ServiceName {
        /// `auth`.
        Auth => "auth",
        /// `db`.
        Db => "db",
        /// `db_postgres_user`.
        DbPostgresUser => "db_postgres_user",
        /// `pooler`.
        Pooler => "pooler",
        /// `realtime`.
        Realtime => "realtime",
        /// `rest`.
        Rest => "rest",
        /// `storage`.
        Storage => "storage",
        /// `pg_bouncer`.
        PgBouncer => "pg_bouncer",
    }
    /// A service this version of the crate does not know, kept as sent.
    other Unknown
}

tenancy_core::open_enum! {
    /// A service's health (`V1ServiceHealthResponse.status`).
    pub enum HealthStatus {
        /// `COMING_UP`.
        ComingUp => "COMING_UP",
        /// `ACTIVE_HEALTHY`.
        ActiveHealthy => "ACTIVE_HEALTHY",
        /// `UNHEALTHY`.
        Unhealthy => "UNHEALTHY",
    }
    /// A status this version of the crate does not know, kept as sent.
    other Unknown
}

/// One service's health (`V1ServiceHealthResponse`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ServiceHealth {
    /// The service.
    pub name: ServiceName,
    /// Its health.
    pub status: HealthStatus,
    /// Service-specific details (one of the spec's `info` shapes), as sent.
    #[serde(default)]
    pub info: Option<serde_json::Value>,
    /// The probe's error, when it failed.
    #[serde(default)]
    pub error: Option<String>,
}

impl ServiceHealth {
    /// Whether the service is `ACTIVE_HEALTHY`.
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::ActiveHealthy
    }
}
