//! Test helpers (feature `testing`): a stateful stand-in of the Management API and of
//! projects' Auth admin API, as strict as the real service where it matters, and
//! clients configured for fast tests.
//!
//! The stand-in ([`FakeSupabase`]) behaves like Supabase in the field:
//! - a create needs exactly one of `region` / `region_selection`, and refuses fields
//!   the spec does not allow;
//! - the organization-scoped list searches by name, pages (`limit` at most 100) and
//!   sorts; projects of other organizations never appear in it;
//! - the direct host `db.<ref>.supabase.invalid` does not resolve; the pooler config
//!   lists one transaction-mode entry on a port where nothing listens, as the real
//!   one lists port 6543; session mode is the same host on port 5432;
//! - with [`FakeConfig::local_databases`], every project gets a role
//!   `postgres.<ref>` and a database of its own on the local PostgreSQL, so that
//!   the session pooler URL really connects;
//! - the first secret key listed acts for another role than `service_role`, and the
//!   Auth admin API refuses every key but the service keys;
//! - a name in [`FakeConfig::init_failed_names`] ends `INIT_FAILED` on its first
//!   create; [`FakeConfig::list_lag`] hides new projects from the lists for a while
//!   after their create;
//! - a pause shows `PAUSING` ([`FakeConfig::pausing_polls`] looks), then `INACTIVE`,
//!   and is refused (400) for a project that is not `ACTIVE_HEALTHY`; a paused
//!   project's health reports every service `UNHEALTHY`. A restore (of an `INACTIVE`
//!   project only, else 400) still shows `INACTIVE` on the first look, then
//!   `RESTORING` ([`FakeConfig::restoring_polls`] looks), then comes up as a new
//!   project does. A [seeded paused project](FakeSupabase::seed_paused_project) is
//!   `INACTIVE` until restored;
//! - a deleted project is gone: every request about it answers 404, and the lists
//!   leave it out.
//!
//! ```no_run
//! use supabase_mgmt::testing::{self, FakeConfig, FakeSupabase};
//!
//! # async fn run() {
//! let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
//! let provisioner = testing::provisioner_builder(testing::client(&server)).build().unwrap();
//! # let _ = (provisioner, fake);
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tenancy_core::{DatabaseUrl, RetryPolicy};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::{
    DatabasePasswords, ManagementClient, ManagementClientBuilder, Pacing, SupabaseProvisioner,
    SupabaseProvisionerBuilder, WaitOptions,
};

/// The access token of every test client.
pub const TOKEN: &str = "sbp_fixturetoken0123456789abcdef";
/// The organization of every fixture.
pub const ORG: &str = "tsrqponmlkjihgfedcba";
/// Another organization the token can see.
pub const OTHER_ORG: &str = "abcdefghijklmnopqrst";
/// A password derivation secret.
pub const PASSWORD_SECRET: &str = "fixture-secret-0123456789abcdef0123456789";
/// The revealed secret API key of every fake project that acts as `service_role`.
pub const SECRET_KEY: &str = "sb_secret_fixturekey0123456789";
/// A revealed secret API key of every fake project that acts as another role
/// (listed first): Auth refuses it.
pub const OTHER_ROLE_SECRET_KEY: &str = "sb_secret_readonlykey0123456789";
/// The legacy service_role JWT of every fake project.
pub const SERVICE_ROLE_JWT: &str = "eyJhbGciOiJIUzI1NiJ9.c2VydmljZV9yb2xl.fixture";
/// The answer to a create without exactly one region field, word for word.
pub const REGION_REQUIRED: &str = "Either region or region_selection must be defined, but not both";

/// The 20-letter project ref number `n`.
pub fn project_ref(n: u64) -> String {
    let mut n = n;
    (0..20)
        .map(|_| {
            let c = (b'a' + (n % 26) as u8) as char;
            n /= 26;
            c
        })
        .collect()
}

/// The direct host of a project: a name that never resolves (`.invalid`), as the
/// real IPv6-only host does not from an IPv4-only network.
pub fn direct_host(project_ref: &str) -> String {
    format!("db.{project_ref}.supabase.invalid")
}

/// A `V1ProjectWithDatabaseResponse`.
pub fn project_json(project_ref: &str, name: &str, status: &str) -> Value {
    json!({
        "id": project_ref,
        "ref": project_ref,
        "organization_id": ORG,
        "organization_slug": ORG,
        "name": name,
        "region": "eu-central-1",
        "created_at": "2026-11-26T02:00:00.000Z",
        "status": status,
        "database": {
            "host": direct_host(project_ref),
            "version": "17.4.1.054",
            "postgres_engine": "17",
            "release_channel": "ga"
        }
    })
}

/// A `V1ProjectResponse` (the answer to a create): a new project, without `database`.
pub fn created_project_json(project_ref: &str, name: &str) -> Value {
    let mut project = project_json(project_ref, name, "COMING_UP");
    if let Some(fields) = project.as_object_mut() {
        fields.remove("database");
    }
    project
}

/// An item of `OrganizationProjectsResponse.projects`.
pub fn organization_project_json(
    project_ref: &str,
    name: &str,
    status: &str,
    inserted_at: &str,
) -> Value {
    json!({
        "ref": project_ref,
        "name": name,
        "cloud_provider": "AWS",
        "region": "eu-central-1",
        "is_branch": false,
        "status": status,
        "inserted_at": inserted_at,
        "databases": [{
            "infra_compute_size": "nano",
            "region": "eu-central-1",
            "status": "ACTIVE_HEALTHY",
            "cloud_provider": "AWS",
            "identifier": project_ref,
            "type": "PRIMARY"
        }]
    })
}

/// A `V1ServiceHealthResponse`.
pub fn health_json(service: &str, status: &str) -> Value {
    json!({ "name": service, "healthy": status == "ACTIVE_HEALTHY", "status": status })
}

/// The `ApiKeyResponse`s of a project: first a secret key acting as another role
/// than `service_role`, then legacy anon and service_role, a publishable key, and
/// the secret key acting as `service_role`.
pub fn api_keys_json() -> Value {
    json!([
        secret_key_json("ci_reader", OTHER_ROLE_SECRET_KEY, "authenticated"),
        api_key_json("anon", "legacy", "eyJhbGciOiJIUzI1NiJ9.YW5vbg.fixture"),
        api_key_json("service_role", "legacy", SERVICE_ROLE_JWT),
        api_key_json("default", "publishable", "sb_publishable_fixture"),
        secret_key_json("default", SECRET_KEY, "service_role"),
    ])
}

/// One `ApiKeyResponse` without a JWT template.
pub fn api_key_json(name: &str, key_type: &str, key: &str) -> Value {
    json!({
        "api_key": key,
        "id": format!("{name}-{key_type}-id"),
        "type": key_type,
        "prefix": key.get(..8),
        "name": name,
        "description": null,
        "hash": "fixturehash",
        "secret_jwt_template": null,
        "inserted_at": "2026-11-26T02:00:00.000Z",
        "updated_at": "2026-11-26T02:00:00.000Z"
    })
}

/// A secret `ApiKeyResponse` acting as `role`.
pub fn secret_key_json(name: &str, key: &str, role: &str) -> Value {
    let mut value = api_key_json(name, "secret", key);
    value["secret_jwt_template"] = json!({ "role": role });
    value
}

/// The `SupavisorConfigResponse`s of a project as the real API lists them: one
/// primary entry in transaction mode, here on `host:transaction_port`, for the
/// database `db_name`.
pub fn pooler_json(project_ref: &str, host: &str, transaction_port: u16, db_name: &str) -> Value {
    let user = format!("postgres.{project_ref}");
    let connection =
        format!("postgresql://{user}:[YOUR-PASSWORD]@{host}:{transaction_port}/{db_name}");
    json!([{
        "identifier": project_ref,
        "database_type": "PRIMARY",
        "is_using_scram_auth": true,
        "db_user": user,
        "db_host": host,
        "db_port": transaction_port,
        "db_name": db_name,
        "connection_string": connection,
        "connectionString": connection,
        "default_pool_size": 15,
        "max_client_conn": 200,
        "pool_mode": "transaction"
    }])
}

/// `OrganizationResponseV1`s.
pub fn organizations_json() -> Value {
    json!([
        { "id": ORG, "slug": ORG, "name": "Acme Holdings" },
        { "id": OTHER_ORG, "slug": OTHER_ORG, "name": "Someone Else" }
    ])
}

/// A `RegionsInfo`, recommending the smart group `emea`.
pub fn regions_json() -> Value {
    let specific = |code: &str, name: &str| json!({"name": name, "code": code, "type": "specific", "provider": "AWS", "status": "capacity"});
    json!({
        "recommendations": {
            "smartGroup": {"name": "Europe", "code": "emea", "type": "smartGroup"},
            "specific": [specific("eu-central-1", "Central EU (Frankfurt)")]
        },
        "all": {
            "smartGroup": [
                {"name": "Americas", "code": "americas", "type": "smartGroup"},
                {"name": "Europe", "code": "emea", "type": "smartGroup"}
            ],
            "specific": [specific("eu-central-1", "Central EU (Frankfurt)"), specific("us-east-1", "East US (North Virginia)")]
        }
    })
}

/// A GoTrue user, as the Auth admin API returns it.
pub fn auth_user_json(id: &str, email: &str) -> Value {
    json!({
        "id": id,
        "aud": "authenticated",
        "role": "authenticated",
        "email": email,
        "email_confirmed_at": "2026-11-26T02:00:00Z",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "created_at": "2026-11-26T02:00:00Z",
        "updated_at": "2026-11-26T02:00:00Z"
    })
}

/// GoTrue's answer to creating a user whose email is taken (HTTP 422).
pub fn email_exists_json() -> Value {
    json!({
        "code": 422,
        "error_code": "email_exists",
        "msg": "A user with this email address has already been registered"
    })
}

/// A retry policy with short, deterministic delays.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_jitter(false)
        .with_initial_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20))
        .with_max_elapsed(Some(Duration::from_secs(10)))
}

/// A client builder for `base_url` with fast retries and no pacing.
pub fn client_builder(base_url: &str) -> ManagementClientBuilder {
    ManagementClient::builder(TOKEN.into())
        .base_url(base_url)
        .retry_policy(fast_policy())
        .pacing(None)
}

/// A client of `server` with fast retries, a 2 s timeout and no pacing.
pub fn client(server: &MockServer) -> ManagementClient {
    client_builder(&server.uri())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("the test client's settings are valid")
}

/// A client of `server` pacing at `requests` per `per` in each endpoint scope.
pub fn paced_client(server: &MockServer, requests: u32, per: Duration) -> ManagementClient {
    client_builder(&server.uri())
        .pacing(Some(Pacing::new(requests, per)))
        .build()
        .expect("the test client's settings are valid")
}

/// A client of a port nobody listens on, making `attempts` attempts per request.
pub fn unreachable_client(attempts: u32) -> ManagementClient {
    client_builder(&format!("http://127.0.0.1:{}", unused_port()))
        .retry_policy(fast_policy().with_max_attempts(attempts))
        .build()
        .expect("the test client's settings are valid")
}

/// Derived passwords from [`PASSWORD_SECRET`].
pub fn passwords() -> DatabasePasswords {
    DatabasePasswords::derived(PASSWORD_SECRET.into()).expect("the fixture secret is long enough")
}

/// A provisioner builder for [`ORG`] with derived passwords, looking for the
/// project of an ambiguous create every 10 ms for 200 ms, and a 5 s readiness
/// timeout.
pub fn provisioner_builder(client: ManagementClient) -> SupabaseProvisionerBuilder {
    SupabaseProvisioner::builder(client, ORG, passwords())
        .adoption_window(Duration::from_millis(200))
        .lookup_interval(Duration::from_millis(10))
        .wait(WaitOptions::new(Duration::from_secs(5)))
}

/// The project URL template pointing at the fake's Auth routes.
pub fn project_url_template(server: &MockServer) -> String {
    format!("{}/project/{{ref}}", server.uri())
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("the loopback interface can bind an ephemeral port")
}

/// What the fake does with one `POST /v1/projects`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateFault {
    /// Answers with this status without creating anything.
    Refuse(u16),
    /// Creates the project, then answers with this status.
    CreateThenFail(u16),
    /// Creates the project and answers after this delay.
    CreateThenDelay(Duration),
}

/// How the fake behaves.
#[derive(Debug, Clone, Default)]
pub struct FakeConfig {
    /// How many `GET /v1/projects/{ref}` answer `COMING_UP` before `ACTIVE_HEALTHY`.
    pub coming_up_polls: u32,
    /// How many health probes answer 404 once the project is active.
    pub health_not_found: u32,
    /// How many health probes then report the pooler `COMING_UP`.
    pub pooler_coming_up: u32,
    /// Faults for successive creates (then creates succeed).
    pub create_faults: Vec<CreateFault>,
    /// A final status that projects reach instead of `ACTIVE_HEALTHY`.
    pub terminal_status: Option<&'static str>,
    /// A fixed-window rate limit on all Management API requests together: this many
    /// requests per window (429 with `Retry-After` beyond).
    pub rate_limit: Option<(u32, Duration)>,
    /// A fixed-window rate limit per endpoint scope, the method and path template
    /// (`GET /v1/projects/{ref}`), as Supabase counts: this many requests per window
    /// in each scope (429 with `Retry-After` beyond). Each scope's windows start at
    /// its first request; a short window (say 2 s for the real minute) compresses time.
    pub endpoint_rate_limit: Option<(u32, Duration)>,
    /// Names whose first created project ends `INIT_FAILED`.
    pub init_failed_names: Vec<String>,
    /// How long a created project stays out of the project lists.
    pub list_lag: Duration,
    /// How many `GET /v1/projects/{ref}` show `PAUSING` after a pause (at least one).
    pub pausing_polls: u32,
    /// How many `GET /v1/projects/{ref}` show `RESTORING` after a restore (at least one).
    pub restoring_polls: u32,
    /// The PostgreSQL server (an admin URL such as
    /// `postgres://postgres@127.0.0.1:5432/postgres`) on which every project gets a
    /// role `postgres.<ref>` and a database of its own; the pooler config then
    /// points there. Session mode is reached on port 5432 of that host.
    pub local_databases: Option<String>,
}

/// A project held by the fake.
#[derive(Debug, Clone)]
pub struct FakeProject {
    /// The project ref.
    pub project_ref: String,
    /// Its organization.
    pub organization_slug: String,
    /// Its name.
    pub name: String,
    /// Its database password.
    pub db_pass: String,
    /// Whether it was deleted (every request about it then answers 404).
    pub removed: bool,
    /// A status it holds whatever else happens (`INIT_FAILED`, `INACTIVE`, or one the
    /// client has never seen), until restored.
    pub held_status: Option<String>,
    /// The statuses the next `GET /v1/projects/{ref}` show, one each, before the
    /// project settles (`PAUSING` after a pause; `INACTIVE`, `RESTORING` after a
    /// restore).
    pub passing_statuses: VecDeque<String>,
    /// How many `GET /v1/projects/{ref}` it has answered.
    pub polls: u32,
    /// How many health probes it has answered.
    pub health_probes: u32,
    /// The database name in its pooler config.
    pub db_name: String,
    /// Whether its create was ambiguous or fast: when it entered the lists.
    listed_from: Instant,
    inserted_at: String,
    /// The local database, dropped with the last copy of the project.
    local: Option<Arc<LocalDatabase>>,
}

/// An Auth admin user creation the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCreation {
    /// The project.
    pub project_ref: String,
    /// The user's email.
    pub email: String,
    /// The API key the request authenticated with (`apikey` header).
    pub api_key: String,
}

#[derive(Debug)]
struct FakeState {
    projects: Vec<FakeProject>,
    creates: usize,
    users: BTreeMap<String, BTreeMap<String, String>>,
    admin_creations: Vec<AdminCreation>,
    window: FixedWindow,
    endpoint_windows: BTreeMap<String, FixedWindow>,
    served_by_scope: BTreeMap<String, u64>,
    served: u64,
    rate_limited: u64,
    transaction_port: u16,
    ref_base: u64,
}

/// A stateful fake of the Management API and of projects' Auth admin API.
#[derive(Debug, Clone)]
pub struct FakeSupabase {
    config: Arc<FakeConfig>,
    state: Arc<Mutex<FakeState>>,
}

/// The fields `V1CreateProjectBody` allows (`additionalProperties: false`).
const CREATE_FIELDS: [&str; 10] = [
    "db_pass",
    "name",
    "organization_id",
    "organization_slug",
    "plan",
    "region",
    "region_selection",
    "kps_enabled",
    "desired_instance_size",
    "template_url",
];

impl FakeSupabase {
    /// Starts a wiremock server answering every request with this fake.
    pub async fn start(config: FakeConfig) -> (MockServer, FakeSupabase) {
        let server = MockServer::start().await;
        // Projects backed by real databases get refs no other test uses: roles are
        // shared by the whole server.
        let ref_base = if config.local_databases.is_some() {
            u64::from(rand::random::<u32>()) << 16
        } else {
            0
        };
        let fake = FakeSupabase {
            config: Arc::new(config),
            state: Arc::new(Mutex::new(FakeState {
                projects: Vec::new(),
                creates: 0,
                users: BTreeMap::new(),
                admin_creations: Vec::new(),
                window: FixedWindow::starting(Instant::now()),
                endpoint_windows: BTreeMap::new(),
                served_by_scope: BTreeMap::new(),
                served: 0,
                rate_limited: 0,
                transaction_port: unused_port(),
                ref_base,
            })),
        };
        Mock::given(wiremock::matchers::any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        (server, fake)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a project of [`ORG`] as if created earlier (by a crashed process, say).
    pub fn seed_project(&self, name: &str, db_pass: &str) -> String {
        self.seed_project_in(ORG, name, db_pass)
    }

    /// Adds a project of `organization_slug` as if created earlier.
    pub fn seed_project_in(&self, organization_slug: &str, name: &str, db_pass: &str) -> String {
        self.seed(organization_slug, name, db_pass, None, true)
    }

    /// Adds a paused (`INACTIVE`) project of [`ORG`], as free projects end after a week idle.
    pub fn seed_paused_project(&self, name: &str, db_pass: &str) -> String {
        self.seed(ORG, name, db_pass, Some("INACTIVE"), true)
    }

    /// Adds a project of `organization_slug` holding `status` (one the client may
    /// never have seen) and lacking the optional fields of the lists.
    pub fn seed_odd_project(&self, organization_slug: &str, name: &str, status: &str) -> String {
        self.seed(organization_slug, name, "odd-password", Some(status), false)
    }

    /// Adds `count` live projects of [`ORG`] named `{prefix}{i}`, older than any
    /// created later: an organization that has been in business for a while.
    pub fn seed_crowd(&self, prefix: &str, count: usize) {
        for i in 0..count {
            self.seed(
                ORG,
                &format!("{prefix}{i:04}"),
                "crowd-password",
                None,
                false,
            );
        }
    }

    /// Adds a project; with `with_database`, and local databases configured, a
    /// database of its own too.
    fn seed(
        &self,
        organization: &str,
        name: &str,
        db_pass: &str,
        status: Option<&str>,
        with_database: bool,
    ) -> String {
        let mut state = self.lock();
        let mut project = self.new_project(&mut state, organization, name, db_pass);
        project.held_status = status.map(str::to_owned);
        project.listed_from = Instant::now();
        if let (true, Some(server)) = (with_database, &self.config.local_databases) {
            let local = LocalDatabase::create(server, &project)
                .unwrap_or_else(|e| panic!("the stand-in could not create a database: {e}"));
            project.local = Some(Arc::new(local));
        }
        let project_ref = project.project_ref.clone();
        state.projects.push(project);
        project_ref
    }

    /// Adds an Auth user to a project.
    pub fn seed_user(&self, project_ref: &str, email: &str, id: &str) {
        self.lock()
            .users
            .entry(project_ref.into())
            .or_default()
            .insert(email.into(), id.into());
    }

    /// The projects, removed ones included.
    pub fn projects(&self) -> Vec<FakeProject> {
        self.lock().projects.clone()
    }

    /// The live (not removed) projects of [`ORG`] named `name`.
    pub fn live_projects_named(&self, name: &str) -> Vec<FakeProject> {
        self.lock()
            .projects
            .iter()
            .filter(|p| p.name == name && p.organization_slug == ORG && !p.removed)
            .cloned()
            .collect()
    }

    /// How many creates were received.
    pub fn creates(&self) -> usize {
        self.lock().creates
    }

    /// The admin users created through the Auth admin API, with the key used.
    pub fn admin_creations(&self) -> Vec<AdminCreation> {
        self.lock().admin_creations.clone()
    }

    /// The Management API requests answered normally, per endpoint scope
    /// (`GET /v1/projects/{ref}`).
    pub fn served_by_scope(&self) -> BTreeMap<String, u64> {
        self.lock().served_by_scope.clone()
    }

    /// (requests answered normally, requests answered 429).
    pub fn counts(&self) -> (u64, u64) {
        let state = self.lock();
        (state.served, state.rate_limited)
    }

    /// The port of the transaction-mode pooler in the pooler config (nothing listens).
    pub fn transaction_port(&self) -> u16 {
        self.lock().transaction_port
    }

    /// The URL of a project's own database on the local server (as its owner role),
    /// when the fake was started with [`FakeConfig::local_databases`].
    pub fn local_database_url(&self, project_ref: &str) -> Option<DatabaseUrl> {
        let state = self.lock();
        let project = state
            .projects
            .iter()
            .find(|p| p.project_ref == project_ref)?;
        project.local.as_ref().map(|local| local.url.clone())
    }

    /// Drops every local database and role this fake made; also done when the
    /// last copy of a project goes away.
    pub fn drop_local_databases(&self) {
        let locals: Vec<Arc<LocalDatabase>> = self
            .lock()
            .projects
            .iter_mut()
            .filter_map(|p| p.local.take())
            .collect();
        drop(locals);
    }

    fn new_project(
        &self,
        state: &mut FakeState,
        organization: &str,
        name: &str,
        db_pass: &str,
    ) -> FakeProject {
        let n = state.projects.len() as u64;
        let project_ref = project_ref(state.ref_base + 1000 + n);
        let db_name = if self.config.local_databases.is_some() {
            format!("sb_{project_ref}")
        } else {
            "postgres".to_owned()
        };
        FakeProject {
            organization_slug: organization.into(),
            name: name.into(),
            db_pass: db_pass.into(),
            removed: false,
            held_status: None,
            passing_statuses: VecDeque::new(),
            polls: 0,
            health_probes: 0,
            listed_from: Instant::now() + self.config.list_lag,
            // Later projects sort after earlier ones, as real creation times do.
            inserted_at: format!(
                "2026-11-26T02:{:02}:{:02}.{:03}Z",
                n / 3600 % 60,
                n / 60 % 60,
                n % 60
            ),
            local: None,
            db_name,
            project_ref,
        }
    }

    fn answer(&self, state: &mut FakeState, request: &Request) -> ResponseTemplate {
        let method = request.method.as_str();
        let segments: Vec<&str> = request
            .url
            .path()
            .trim_start_matches('/')
            .split('/')
            .collect();
        match (method, segments.as_slice()) {
            ("GET", ["v1", "organizations"]) => ok(organizations_json()),
            ("GET", ["v1", "projects"]) => ok(Value::Array(
                listed(state).map(|p| self.project_json(p)).collect(),
            )),
            ("GET", ["v1", "organizations", slug, "projects"]) => {
                self.organization_projects(state, slug, request)
            }
            ("GET", ["v1", "projects", "available-regions"]) => ok(regions_json()),
            ("POST", ["v1", "projects"]) => self.create(state, request),
            ("GET", ["v1", "projects", project_ref]) => {
                self.with_project(state, project_ref, |fake, p| {
                    let shown = match p.passing_statuses.pop_front() {
                        Some(passing) => passing,
                        None => {
                            p.polls += 1;
                            fake.status(p)
                        }
                    };
                    let mut json = fake.project_json(p);
                    json["status"] = shown.into();
                    ok(json)
                })
            }
            ("DELETE", ["v1", "projects", project_ref]) => {
                self.with_project(state, project_ref, |_, p| {
                    p.removed = true;
                    ok(json!({"id": 1, "ref": p.project_ref, "name": p.name}))
                })
            }
            ("POST", ["v1", "projects", project_ref, "pause"]) => {
                self.with_project(state, project_ref, |fake, p| fake.pause(p))
            }
            ("POST", ["v1", "projects", project_ref, "restore"]) => {
                self.with_project(state, project_ref, |fake, p| fake.restore(p))
            }
            ("GET", ["v1", "projects", project_ref, "health"]) => {
                let services: Vec<String> = request
                    .url
                    .query_pairs()
                    .filter(|(k, _)| k == "services")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                self.with_project(state, project_ref, |fake, p| fake.health(p, &services))
            }
            ("GET", ["v1", "projects", project_ref, "config", "database", "pooler"]) => {
                let port = state.transaction_port;
                let host = self.pooler_host();
                self.with_project(state, project_ref, |_, p| {
                    ok(pooler_json(&p.project_ref, &host, port, &p.db_name))
                })
            }
            ("GET", ["v1", "projects", project_ref, "api-keys"]) => {
                self.with_project(state, project_ref, |_, _| ok(api_keys_json()))
            }
            ("PATCH", ["v1", "projects", project_ref, "database", "password"]) => {
                let Some(password) = json_field(request, "password") else {
                    return bad_request("password is required");
                };
                self.with_project(state, project_ref, |_, p| {
                    p.db_pass = password;
                    ok(json!({"message": "Password updated"}))
                })
            }
            ("POST", ["project", project_ref, "auth", "v1", "admin", "users"]) => {
                self.create_user(state, project_ref, request)
            }
            ("GET", ["project", project_ref, "auth", "v1", "admin", "users"]) => {
                if let Err(refused) = authorize_admin(request) {
                    return *refused;
                }
                let filter = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "filter")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let users = state.users.get(*project_ref).cloned().unwrap_or_default();
                let listed: Vec<Value> = users
                    .iter()
                    .filter(|(email, _)| email.contains(&filter))
                    .map(|(email, id)| auth_user_json(id, email))
                    .collect();
                ok(json!({"users": listed, "aud": "authenticated"}))
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({"message": "Cannot find route"})),
        }
    }

    fn pooler_host(&self) -> String {
        self.config
            .local_databases
            .as_deref()
            .and_then(|url| DatabaseUrl::parse(url).ok())
            .and_then(|url| url.host().map(str::to_owned))
            .unwrap_or_else(|| "127.0.0.1".to_owned())
    }

    fn organization_projects(
        &self,
        state: &FakeState,
        slug: &str,
        request: &Request,
    ) -> ResponseTemplate {
        let param = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let offset: usize = match param("offset").map(|v| v.parse()) {
            None => 0,
            Some(Ok(offset)) => offset,
            Some(Err(_)) => return bad_request("offset must be a whole number"),
        };
        let limit: usize = match param("limit").map(|v| v.parse()) {
            None => 100,
            Some(Ok(limit @ 1..=100)) => limit,
            Some(_) => return bad_request("limit must be a number from 1 to 100"),
        };
        let search = param("search").unwrap_or_default().to_lowercase();
        let mut matching: Vec<&FakeProject> = listed(state)
            .filter(|p| p.organization_slug == slug && p.name.to_lowercase().contains(&search))
            .collect();
        match param("sort").as_deref().unwrap_or("name_asc") {
            "name_asc" => matching.sort_by(|a, b| a.name.cmp(&b.name)),
            "name_desc" => matching.sort_by(|a, b| b.name.cmp(&a.name)),
            "created_asc" => matching.sort_by(|a, b| a.inserted_at.cmp(&b.inserted_at)),
            "created_desc" => matching.sort_by(|a, b| b.inserted_at.cmp(&a.inserted_at)),
            _ => {
                return bad_request("sort must be name_asc, name_desc, created_asc or created_desc")
            }
        }
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|p| self.organization_project_json(p))
            .collect();
        ok(json!({
            "projects": page,
            "pagination": {"count": matching.len(), "limit": limit, "offset": offset}
        }))
    }

    fn create(&self, state: &mut FakeState, request: &Request) -> ResponseTemplate {
        let body: Value = match request.body_json() {
            Ok(body @ Value::Object(_)) => body,
            _ => return bad_request("the body must be a JSON object"),
        };
        if let Some(unknown) = body
            .as_object()
            .and_then(|fields| fields.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())))
        {
            return bad_request(&format!("property {unknown} should not exist"));
        }
        if body.get("region").is_some() == body.get("region_selection").is_some() {
            return bad_request(REGION_REQUIRED);
        }
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(name), Some(organization), Some(db_pass)) =
            (field("name"), field("organization_slug"), field("db_pass"))
        else {
            return bad_request("name, organization_slug and db_pass are required");
        };
        let fault = self.config.create_faults.get(state.creates).copied();
        state.creates += 1;
        if let Some(CreateFault::Refuse(status)) = fault {
            return ResponseTemplate::new(status)
                .set_body_json(json!({"message": "upstream unavailable"}));
        }
        let first_of_name = !state.projects.iter().any(|p| p.name == name);
        let mut project = self.new_project(state, &organization, &name, &db_pass);
        if first_of_name && self.config.init_failed_names.contains(&name) {
            project.held_status = Some("INIT_FAILED".into());
        } else if let Some(server) = &self.config.local_databases {
            match LocalDatabase::create(server, &project) {
                Ok(local) => project.local = Some(Arc::new(local)),
                Err(error) => {
                    return ResponseTemplate::new(500)
                        .set_body_json(json!({"message": format!("the stand-in could not create the database: {error}")}))
                }
            }
        }
        let created = ResponseTemplate::new(201)
            .set_body_json(created_project_json(&project.project_ref, &name));
        state.projects.push(project);
        match fault {
            Some(CreateFault::CreateThenFail(status)) => {
                ResponseTemplate::new(status).set_body_string("<html>502 Bad Gateway</html>")
            }
            Some(CreateFault::CreateThenDelay(delay)) => created.set_delay(delay),
            _ => created,
        }
    }

    fn create_user(
        &self,
        state: &mut FakeState,
        project_ref: &str,
        request: &Request,
    ) -> ResponseTemplate {
        let api_key = match authorize_admin(request) {
            Ok(key) => key,
            Err(refused) => return *refused,
        };
        let Some(email) = json_field(request, "email") else {
            return bad_request("email is required");
        };
        let users = state.users.entry(project_ref.into()).or_default();
        if users.contains_key(&email) {
            return ResponseTemplate::new(422).set_body_json(email_exists_json());
        }
        let id = format!("00000000-0000-4000-8000-{:012}", users.len() + 1);
        users.insert(email.clone(), id.clone());
        state.admin_creations.push(AdminCreation {
            project_ref: project_ref.into(),
            email: email.clone(),
            api_key,
        });
        ok(auth_user_json(&id, &email))
    }

    /// The `V1ProjectWithDatabaseResponse` of a held project.
    fn project_json(&self, project: &FakeProject) -> Value {
        let mut json = project_json(&project.project_ref, &project.name, &self.status(project));
        json["organization_slug"] = project.organization_slug.as_str().into();
        json["organization_id"] = project.organization_slug.as_str().into();
        json
    }

    fn organization_project_json(&self, project: &FakeProject) -> Value {
        let mut json = organization_project_json(
            &project.project_ref,
            &project.name,
            &self.status(project),
            &project.inserted_at,
        );
        let known = crate::ProjectStatus::NAMED.contains(&self.status(project).as_str());
        if let (false, Some(fields)) = (known, json.as_object_mut()) {
            // An odd project: a status never seen, and optional details missing.
            fields.remove("databases");
            fields.remove("cloud_provider");
        }
        json
    }

    fn status(&self, project: &FakeProject) -> String {
        if let Some(passing) = project.passing_statuses.front() {
            passing.clone()
        } else if let Some(held) = &project.held_status {
            held.clone()
        } else if project.polls <= self.config.coming_up_polls {
            "COMING_UP".into()
        } else {
            self.config
                .terminal_status
                .unwrap_or("ACTIVE_HEALTHY")
                .into()
        }
    }

    /// Pauses an `ACTIVE_HEALTHY` project: `PAUSING`, then `INACTIVE`.
    fn pause(&self, project: &mut FakeProject) -> ResponseTemplate {
        let status = self.status(project);
        if status != "ACTIVE_HEALTHY" {
            return bad_request(&format!(
                "Project is {status}; only an active project can be paused"
            ));
        }
        project.held_status = Some("INACTIVE".into());
        let pausing = self.config.pausing_polls.max(1) as usize;
        project.passing_statuses = std::iter::repeat_n("PAUSING".to_owned(), pausing).collect();
        ResponseTemplate::new(200)
    }

    /// Restores an `INACTIVE` project: `INACTIVE` once more (the restore takes a
    /// moment to show), `RESTORING`, then up through `COMING_UP` as a new project.
    fn restore(&self, project: &mut FakeProject) -> ResponseTemplate {
        let status = self.status(project);
        if status != "INACTIVE" {
            return bad_request(&format!(
                "Project is {status}; only a paused project can be restored"
            ));
        }
        let restoring = self.config.restoring_polls.max(1) as usize;
        project.held_status = None;
        project.polls = 0;
        project.health_probes = 0;
        project.passing_statuses = std::iter::once("INACTIVE".to_owned())
            .chain(std::iter::repeat_n("RESTORING".to_owned(), restoring))
            .collect();
        ResponseTemplate::new(200)
    }

    fn health(&self, project: &mut FakeProject, services: &[String]) -> ResponseTemplate {
        let status = self.status(project);
        if matches!(status.as_str(), "INACTIVE" | "PAUSING") {
            let down = services.iter().map(|s| {
                let mut health = health_json(s, "UNHEALTHY");
                health["error"] = format!("project is {status}").into();
                health
            });
            return ok(Value::Array(down.collect()));
        }
        project.health_probes += 1;
        let probe = project.health_probes;
        if probe <= self.config.health_not_found {
            return ResponseTemplate::new(404)
                .set_body_json(json!({"message": "Project not found"}));
        }
        let pooler_up = probe > self.config.health_not_found + self.config.pooler_coming_up;
        ok(Value::Array(
            services
                .iter()
                .map(|s| {
                    health_json(
                        s,
                        if s == "pooler" && !pooler_up {
                            "COMING_UP"
                        } else {
                            "ACTIVE_HEALTHY"
                        },
                    )
                })
                .collect(),
        ))
    }

    fn with_project(
        &self,
        state: &mut FakeState,
        project_ref: &str,
        act: impl FnOnce(&FakeSupabase, &mut FakeProject) -> ResponseTemplate,
    ) -> ResponseTemplate {
        match state
            .projects
            .iter_mut()
            .find(|p| p.project_ref == project_ref && !p.removed)
        {
            Some(project) => act(self, project),
            None => {
                ResponseTemplate::new(404).set_body_json(json!({"message": "Project not found"}))
            }
        }
    }

    /// Counts the request against the global window and its scope's window: the
    /// rate-limit headers to send (the scope's when scopes are limited), and whether
    /// the request is over a limit.
    fn limit(&self, state: &mut FakeState, scope: &str) -> (Vec<(&'static str, String)>, bool) {
        let now = Instant::now();
        let mut headers = Vec::new();
        let mut exceeded = false;
        if let Some((limit, window)) = self.config.rate_limit {
            let (sent, over) = state.window.count(now, limit, window);
            headers = sent;
            exceeded |= over;
        }
        if let Some((limit, window)) = self.config.endpoint_rate_limit {
            let (sent, over) = state
                .endpoint_windows
                .entry(scope.to_owned())
                .or_insert_with(|| FixedWindow::starting(now))
                .count(now, limit, window);
            headers = sent;
            exceeded |= over;
        }
        (headers, exceeded)
    }
}

/// A fixed rate-limit window: requests counted since `start`.
#[derive(Debug)]
struct FixedWindow {
    start: Instant,
    count: u32,
}

impl FixedWindow {
    fn starting(start: Instant) -> Self {
        Self { start, count: 0 }
    }

    /// Counts a request at `now`: the `X-RateLimit-*` headers (and `Retry-After`
    /// when over), and whether it is over `limit` per `window`.
    fn count(
        &mut self,
        now: Instant,
        limit: u32,
        window: Duration,
    ) -> (Vec<(&'static str, String)>, bool) {
        let elapsed = now - self.start;
        if elapsed >= window {
            let windows = elapsed.as_nanos() / window.as_nanos().max(1);
            self.start += window * windows as u32;
            self.count = 0;
        }
        self.count += 1;
        let reset = format!("{:.3}", (self.start + window - now).as_secs_f64());
        let over = self.count > limit;
        let mut headers = vec![
            ("x-ratelimit-limit", limit.to_string()),
            (
                "x-ratelimit-remaining",
                limit.saturating_sub(self.count).to_string(),
            ),
            ("x-ratelimit-reset", reset.clone()),
        ];
        if over {
            headers.push(("retry-after", reset));
        }
        (headers, over)
    }
}

/// The endpoint scope of a Management API request: its method and path template.
fn endpoint_scope(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let template: Vec<&str> = segments
        .iter()
        .enumerate()
        .map(|(i, segment)| match (i, segments.get(1)) {
            (2, Some(&"projects")) if *segment != "available-regions" => "{ref}",
            (2, Some(&"organizations")) => "{slug}",
            _ => segment,
        })
        .collect();
    format!("{method} /{}", template.join("/"))
}

/// The projects the lists show now (a new project shows after the list lag).
fn listed(state: &FakeState) -> impl Iterator<Item = &FakeProject> {
    let now = Instant::now();
    state
        .projects
        .iter()
        .filter(move |p| p.listed_from <= now && !p.removed)
}

/// The `apikey` of a request the Auth admin API accepts: a service key (the secret
/// key acting as `service_role`, or the legacy JWT with its bearer header).
fn authorize_admin(request: &Request) -> Result<String, Box<ResponseTemplate>> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let api_key = header("apikey").unwrap_or_default();
    let bearer = header("authorization");
    match api_key.as_str() {
        SECRET_KEY => Ok(api_key),
        SERVICE_ROLE_JWT if bearer.as_deref() == Some(&format!("Bearer {SERVICE_ROLE_JWT}")) => {
            Ok(api_key)
        }
        OTHER_ROLE_SECRET_KEY => Err(Box::new(ResponseTemplate::new(403).set_body_json(
            json!({"code": 403, "error_code": "not_admin", "msg": "User not allowed"}),
        ))),
        _ => Err(Box::new(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Invalid API key"})),
        )),
    }
}

fn json_field(request: &Request, name: &str) -> Option<String> {
    let body: Value = request.body_json().ok()?;
    body.get(name)?.as_str().map(str::to_owned)
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn bad_request(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({ "message": message }))
}

impl Respond for FakeSupabase {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.lock();
        let is_management = request.url.path().starts_with("/v1/");
        let scope = endpoint_scope(request.method.as_str(), request.url.path());
        let (headers, exceeded) = if is_management {
            self.limit(&mut state, &scope)
        } else {
            (Vec::new(), false)
        };
        let mut response = if exceeded {
            state.rate_limited += 1;
            ResponseTemplate::new(429).set_body_json(json!({"message": "Rate limit exceeded"}))
        } else {
            state.served += 1;
            if is_management {
                *state.served_by_scope.entry(scope).or_default() += 1;
            }
            self.answer(&mut state, request)
        };
        for (name, value) in headers {
            response = response.insert_header(name, value.as_str());
        }
        response
    }
}

/// A project's role and database on the local server; dropped with it.
#[derive(Debug)]
struct LocalDatabase {
    admin_url: String,
    role: String,
    database: String,
    url: DatabaseUrl,
}

impl LocalDatabase {
    /// Creates the role `postgres.<ref>` (with the project's password) and a
    /// database it owns.
    fn create(admin_url: &str, project: &FakeProject) -> Result<Self, String> {
        let role = format!("postgres.{}", project.project_ref);
        let database = project.db_name.clone();
        let password = project.db_pass.replace('\'', "''");
        let statements = vec![
            format!("CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"),
            format!("CREATE DATABASE \"{database}\" OWNER \"{role}\""),
        ];
        run_admin(admin_url, statements)?;
        let server = DatabaseUrl::parse(admin_url).map_err(|e| e.to_string())?;
        let mut url =
            url::Url::parse(server.with_database(&database).expose()).map_err(|e| e.to_string())?;
        url.set_username(&role)
            .map_err(|()| "the server URL cannot carry a user".to_owned())?;
        let url = DatabaseUrl::parse(url.as_str()).map_err(|e| e.to_string())?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            role,
            database,
            url,
        })
    }
}

impl Drop for LocalDatabase {
    fn drop(&mut self) {
        let statements = vec![
            format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database),
            format!("DROP ROLE IF EXISTS \"{}\"", self.role),
        ];
        if let Err(error) = run_admin(&self.admin_url, statements) {
            eprintln!(
                "could not drop the stand-in's database {}: {error}",
                self.database
            );
        }
    }
}

/// Runs `statements` on the server at `admin_url`, on a thread with a runtime of
/// its own (callers are inside and outside runtimes alike).
fn run_admin(admin_url: &str, statements: Vec<String>) -> Result<(), String> {
    let admin_url = admin_url.to_owned();
    let work = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let mut admin = PgConnection::connect(&admin_url)
                .await
                .map_err(|e| e.to_string())?;
            for statement in statements {
                sqlx::raw_sql(&statement)
                    .execute(&mut admin)
                    .await
                    .map_err(|e| format!("{statement}: {e}"))?;
            }
            admin.close().await.map_err(|e| e.to_string())
        })
    });
    work.join()
        .unwrap_or_else(|_| Err("the admin thread panicked".into()))
}
