//! The rollout part of the operator's admin page (feature `pages`), on
//! tenancy-core's admin pages (`tenancy_core::http::pages`).
//!
//! - [`RolloutSection`] is an [`AdminSection`]: a panel with the latest rollout of
//!   the current migrations (status, wave, counts, a progress bar that updates
//!   itself every second while the rollout runs, failed tenants with their errors,
//!   and the actions), a form to start a rollout, and a "Schema" column in the
//!   fleet table.
//! - [`rollout_pages_router`] holds the forms' routes. Nest it at `rollout` under
//!   the admin base path (`/admin/rollout`), behind `require_admin_session`, which
//!   checks the sign-in and every form's forgery token:
//!
//! | route | what it does |
//! |---|---|
//! | `POST /preview` | lints the migration, checks its version and strategy; a page with the findings and, when nothing blocks, a confirm button |
//! | `POST /start` | adds the migration and starts its rollout, then back to the admin page |
//! | `POST /halt`, `/resume`, `/rollback` | as the rollout API does, then back to the admin page with what happened |
//! | `POST /withdraw` (`version`) | withdraws the latest migration, applied by no tenant |
//! | `GET /progress` | [`RolloutProgress`] as JSON, what the panel polls |
//!
//! Refusals are pages with the rollout API's status and message (422, 409, 404).
//! The operations are [`RolloutRoutes`]' own, shared with the JSON API.
//!
//! ```
//! use std::sync::Arc;
//! use axum::extract::FromRef;
//! use axum::Router;
//! use tenancy_core::http::pages::{self, AdminPage, AdminSessions};
//! use tenant_migrate::http::RolloutRoutes;
//! use tenant_migrate::pages::{rollout_pages_router, RolloutSection};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     sessions: AdminSessions,
//!     admin: AdminPage,
//!     rollouts: RolloutRoutes,
//! }
//! impl FromRef<AppState> for AdminSessions {
//!     fn from_ref(state: &AppState) -> Self { state.sessions.clone() }
//! }
//! impl FromRef<AppState> for AdminPage {
//!     fn from_ref(state: &AppState) -> Self { state.admin.clone() }
//! }
//! impl FromRef<AppState> for RolloutRoutes {
//!     fn from_ref(state: &AppState) -> Self { state.rollouts.clone() }
//! }
//!
//! fn app(sessions: AdminSessions, admin: AdminPage, rollouts: RolloutRoutes) -> Router {
//!     let admin = admin.section(Arc::new(RolloutSection::new(rollouts.clone())));
//!     let state = AppState { sessions, admin, rollouts };
//!     let signed_in = pages::admin_pages_router()
//!         .nest("/rollout", rollout_pages_router())
//!         .route_layer(axum::middleware::from_fn_with_state(
//!             state.clone(),
//!             pages::require_admin_session::<AppState>,
//!         ));
//!     Router::new()
//!         .nest("/admin", signed_in.merge(pages::admin_login_router()))
//!         .with_state(state)
//! }
//! ```

use async_trait::async_trait;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use maud::{html, Markup, PreEscaped};
use serde::{Deserialize, Serialize};
use tenancy_core::http::pages::{
    notice, page, redirect, top_bar, AdminSection, AdminSession, FleetColumn,
};
use tenancy_core::http::ApiError;
use tenancy_core::TenantId;

use crate::http::{parse_strategy, RolloutOverview, RolloutRoutes};
use crate::rollout::store::TenantRecord;
use crate::{
    lint, Finding, Migration, RolloutReport, RolloutStatus, Severity, TenantState, WaveProgress,
};

/// How many failed tenants the panel lists.
const FAILED_SHOWN: u32 = 20;

/// The rollout section of the admin page: the panel of the latest rollout of the
/// current migrations with its actions and the form to start one, and a "Schema"
/// column with each listed tenant's schema version. Its forms post to
/// [`rollout_pages_router`], nested at `rollout` under the admin base path.
#[derive(Debug, Clone)]
pub struct RolloutSection {
    routes: RolloutRoutes,
}

impl RolloutSection {
    /// The section over `routes`: the same state the rollout API and
    /// [`rollout_pages_router`] use.
    pub fn new(routes: RolloutRoutes) -> Self {
        Self { routes }
    }
}

#[async_trait]
impl AdminSection for RolloutSection {
    async fn panel(&self, session: &AdminSession) -> Option<Markup> {
        let overview = self.routes.overview(FAILED_SHOWN).await;
        Some(rollout_panel(session, &overview))
    }

    /// One query for the page's tenants: their rows in the latest rollout.
    async fn columns(&self, tenants: &[TenantId]) -> Vec<FleetColumn> {
        let column = FleetColumn::new("Schema");
        match self.routes.tenant_rows(tenants).await {
            Ok(rows) => vec![rows.iter().fold(column, |column, row| {
                column.cell(row.tenant_id.clone(), schema_cell(row))
            })],
            Err(error) => {
                tracing::warn!(
                    error = error.message(),
                    "admin page: the schema column cannot be read"
                );
                vec![column]
            }
        }
    }
}

/// The progress of the latest rollout of the current migrations, as
/// `GET …/rollout/progress` answers it (and the panel polls it):
/// `{"status", "done", "total", "succeeded", "failed", "skipped", "pending",
/// "running", "rolled_back", "wave"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RolloutProgress {
    /// The lifecycle status (`active`, `halted`, `completed`, `rolling_back`,
    /// `rolled_back`).
    pub status: RolloutStatus,
    /// Tenants finished (neither pending nor in flight).
    pub done: u64,
    /// Tenants the rollout covers.
    pub total: u64,
    /// Tenants migrated.
    pub succeeded: u64,
    /// Tenants that failed.
    pub failed: u64,
    /// Tenants with nothing to do.
    pub skipped: u64,
    /// Tenants not started.
    pub pending: u64,
    /// Tenants in flight.
    pub running: u64,
    /// Tenants reverted by a rollback.
    pub rolled_back: u64,
    /// The wave in progress, counted from 0 as the rollout API counts them (the
    /// last wave once every tenant is done).
    pub wave: u32,
}

impl RolloutProgress {
    /// The progress of `report`.
    pub fn of(report: &RolloutReport) -> Self {
        let c = &report.counts;
        Self {
            status: report.status,
            done: c.total() - c.unfinished(),
            total: c.total(),
            succeeded: c.succeeded,
            failed: c.failed,
            skipped: c.skipped,
            pending: c.pending,
            running: c.running,
            rolled_back: c.rolled_back,
            wave: current_wave(report),
        }
    }
}

/// The wave the rollout is in (see [`furthest_started`]).
fn current_wave(report: &RolloutReport) -> u32 {
    furthest_started(&report.waves)
}

/// The furthest wave in which a tenant left `pending` (the first wave before
/// any did): a rollout halted in its second wave is in its second wave, not in
/// the third it never opened.
fn furthest_started(waves: &[WaveProgress]) -> u32 {
    waves
        .iter()
        .rev()
        .find(|wave| wave.counts.pending < wave.counts.total())
        .or(waves.first())
        .map_or(0, |wave| wave.wave)
}

/// The routes of the rollout section's forms (see the [module](self) docs); nest
/// them at `rollout` under the admin base path, behind `require_admin_session`.
pub fn rollout_pages_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    RolloutRoutes: FromRef<S>,
{
    Router::new()
        .route("/preview", post(preview::<S>))
        .route("/start", post(start::<S>))
        .route("/halt", post(halt::<S>))
        .route("/resume", post(resume::<S>))
        .route("/rollback", post(rollback::<S>))
        .route("/withdraw", post(withdraw::<S>))
        .route("/progress", get(progress::<S>))
}

/// The fields of the start form (and of the confirm form after a preview).
#[derive(Debug, Clone, Default, Deserialize)]
struct MigrationForm {
    #[serde(default)]
    migration_sql: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    strategy: String,
    #[serde(default)]
    canary_tag: String,
}

impl MigrationForm {
    /// The version as typed, without surrounding blanks.
    fn version(&self) -> &str {
        self.version.trim()
    }

    /// The strategy in the API's form: `canary:tag=TAG` when a canary tag is
    /// given, else the chosen one (`all` when none is).
    fn strategy(&self) -> String {
        let tag = self.canary_tag.trim();
        let chosen = self.strategy.trim();
        if !tag.is_empty() {
            format!("canary:tag={tag}")
        } else if chosen.is_empty() {
            "all".to_owned()
        } else {
            chosen.to_owned()
        }
    }
}

/// The halt form: an optional reason.
#[derive(Debug, Default, Deserialize)]
struct HaltForm {
    #[serde(default)]
    reason: Option<String>,
}

/// The withdraw form: the version to withdraw.
#[derive(Debug, Default, Deserialize)]
struct WithdrawForm {
    #[serde(default)]
    version: String,
}

async fn preview<S>(
    State(state): State<S>,
    session: AdminSession,
    form: Result<Form<MigrationForm>, FormRejection>,
) -> Response
where
    RolloutRoutes: FromRef<S>,
{
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return bad_form(&session, &rejection),
    };
    let routes = RolloutRoutes::from_ref(&state);
    let latest = match routes.migrations().await {
        Ok(set) => set.latest_version(),
        Err(error) => return failure(&session, &error),
    };
    let strategy = form.strategy();
    let mut problems = Vec::new();
    if crate::stored_catalog::check_sql(&form.migration_sql).is_err() {
        problems.push("The migration SQL is empty; paste the SQL of the migration.".to_owned());
    }
    let version = match Migration::parse_adhoc(form.version(), form.migration_sql.as_str()) {
        Ok(migration) => Some(migration.version()),
        Err(error) => {
            problems.push(format!(
                "{error}. Write the version as a number (a timestamp) and a name, e.g. 20240127120000_add_field."
            ));
            None
        }
    };
    if let (Some(version), Some(latest)) = (version, latest) {
        if version < latest {
            problems.push(format!(
                "Version {version} is older than the latest migration {latest}; give the migration a later version, e.g. a timestamp such as 20240127120000_add_field."
            ));
        }
    }
    if let Err(error) = parse_strategy(Some(&strategy)) {
        problems.push(error.message().to_owned());
    }
    let findings = lint(&form.migration_sql);
    let blocking = findings.iter().any(|f| f.severity == Severity::Error);
    let replaces = version.is_some() && version == latest;
    let ready = problems.is_empty() && !blocking;
    let body = html! {
        h1 { "Check migration " code { (form.version()) } }
        @for problem in &problems { (notice("bad", problem)) }
        @if blocking {
            (notice("bad", "Errors block this migration: they break the running application or block writes. Change it as the fixes say, or mark a statement you reviewed with `-- lint: allow <rule>`, then check again."))
        }
        @if ready {
            (notice("good", "Nothing blocks this migration. Read the SQL and the findings, then start the rollout."))
        }
        h2 { "Lint findings" }
        (findings_table(&findings))
        h2 { "Migration" }
        p {
            "Version " code { (form.version()) } ", strategy " code { (strategy) }
            @if replaces { " — it replaces the latest migration, which only works while no tenant applied it" }
        }
        div.scroll { pre { code { (form.migration_sql) } } }
        @if ready {
            form method="post" action=(session.url("rollout/start")) {
                (session.csrf_field())
                input type="hidden" name="migration_sql" value=(form.migration_sql);
                input type="hidden" name="version" value=(form.version());
                input type="hidden" name="strategy" value=(strategy);
                p { button type="submit" { @if replaces { "Replace and start the rollout" } @else { "Start the rollout" } } }
            }
        }
        h2 { "Change the migration" }
        (start_form(&session, &form, "Check again"))
        p { a href=(session.base()) { "Back to the admin page" } }
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = format!("Check migration {}", form.version());
    (status, page(&title, Some(top_bar(&session)), body)).into_response()
}

async fn start<S>(
    State(state): State<S>,
    session: AdminSession,
    form: Result<Form<MigrationForm>, FormRejection>,
) -> Response
where
    RolloutRoutes: FromRef<S>,
{
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return bad_form(&session, &rejection),
    };
    let routes = RolloutRoutes::from_ref(&state);
    let started = match parse_strategy(Some(&form.strategy())) {
        Ok(strategy) => {
            routes
                .start(form.version(), &form.migration_sql, strategy)
                .await
        }
        Err(error) => Err(error),
    };
    match started {
        Ok(started) => back(
            &session,
            &format!(
                "Rollout {} of migration {} started; its progress shows below.",
                started.rollout_id,
                form.version()
            ),
        ),
        Err(error) => failure(&session, &error),
    }
}

async fn halt<S>(
    State(state): State<S>,
    session: AdminSession,
    form: Result<Form<HaltForm>, FormRejection>,
) -> Response
where
    RolloutRoutes: FromRef<S>,
{
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return bad_form(&session, &rejection),
    };
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("halted from the admin page");
    match RolloutRoutes::from_ref(&state).halt(reason).await {
        Ok(halted) if halted.halted => back(
            &session,
            "Rollout halted: runners claim no more tenants and let those in flight finish. Resume it once the cause is fixed.",
        ),
        Ok(_) => back(&session, "No unfinished rollout to halt; nothing changed."),
        Err(error) => failure(&session, &error),
    }
}

async fn resume<S>(State(state): State<S>, session: AdminSession) -> Response
where
    RolloutRoutes: FromRef<S>,
{
    match RolloutRoutes::from_ref(&state).resume().await {
        Ok(started) => back(
            &session,
            &format!(
                "Rollout {} resumed: its pending and failed tenants are migrated in the background.",
                started.rollout_id
            ),
        ),
        Err(error) => failure(&session, &error),
    }
}

async fn rollback<S>(State(state): State<S>, session: AdminSession) -> Response
where
    RolloutRoutes: FromRef<S>,
{
    match RolloutRoutes::from_ref(&state).rollback().await {
        Ok(started) => back(
            &session,
            &format!(
                "Rollback of rollout {} started: the tenants it migrated go back to the versions they came from.",
                started.rollout_id
            ),
        ),
        Err(error) => failure(&session, &error),
    }
}

async fn withdraw<S>(
    State(state): State<S>,
    session: AdminSession,
    form: Result<Form<WithdrawForm>, FormRejection>,
) -> Response
where
    RolloutRoutes: FromRef<S>,
{
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return bad_form(&session, &rejection),
    };
    match RolloutRoutes::from_ref(&state)
        .withdraw(form.version.trim())
        .await
    {
        Ok(withdrawn) => {
            let latest = withdrawn
                .latest_version
                .map_or_else(|| "none".to_owned(), |v| v.to_string());
            back(
                &session,
                &format!(
                    "Migration {} withdrawn; the latest migration is now {latest}.",
                    withdrawn.withdrawn
                ),
            )
        }
        Err(error) => failure(&session, &error),
    }
}

async fn progress<S>(State(state): State<S>) -> Result<Json<RolloutProgress>, ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    match RolloutRoutes::from_ref(&state).overview(0).await? {
        Some(overview) => Ok(Json(RolloutProgress::of(&overview.report))),
        None => Err(ApiError::not_found(
            "no rollout of the current migrations yet; start one from the admin page",
        )),
    }
}

/// 303 to the admin page, which shows `message`.
fn back(session: &AdminSession, message: &str) -> Response {
    redirect(&format!(
        "{}?notice={}",
        session.base(),
        query_value(message)
    ))
}

/// `text` percent-encoded for a query string.
fn query_value(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A refusal as a page: the rollout API's status and message, under the top bar.
fn failure(session: &AdminSession, error: &ApiError) -> Response {
    let title = match error.status() {
        StatusCode::NOT_FOUND => "Nothing to do",
        StatusCode::CONFLICT => "Not possible any more",
        StatusCode::UNPROCESSABLE_ENTITY => "Refused",
        _ => "Failed",
    };
    let body = html! {
        h1 { (title) }
        (notice("bad", error.message()))
        p { a href=(session.base()) { "Back to the admin page" } }
    };
    (error.status(), page(title, Some(top_bar(session)), body)).into_response()
}

/// A form that could not be read (not a URL-encoded form).
fn bad_form(session: &AdminSession, rejection: &FormRejection) -> Response {
    let message = format!(
        "The form could not be read ({}); reload the admin page and send it again.",
        rejection.body_text()
    );
    failure(session, &ApiError::new(rejection.status(), message))
}

/// The rollout panel of the admin page.
fn rollout_panel(
    session: &AdminSession,
    overview: &Result<Option<RolloutOverview>, ApiError>,
) -> Markup {
    html! {
        section aria-labelledby="rollout" {
            h2 #rollout { "Schema rollout" }
            @match overview {
                Err(error) => (notice("bad", &format!(
                    "The rollout state cannot be read ({}). Check that the control-plane database is reachable, then reload the page.",
                    error.message()
                ))),
                Ok(None) => p.muted { "No rollout of the current migrations yet. Start one with the form below." },
                Ok(Some(overview)) => (rollout_state(session, overview)),
            }
            // Folded once a rollout exists, so the fleet stays in view.
            details #start-rollout open[!matches!(overview, Ok(Some(_)))] {
                summary { "Start a rollout" }
                (start_form(session, &MigrationForm::default(), "Check"))
            }
        }
    }
}

/// The badge class of a status.
fn status_class(status: RolloutStatus) -> &'static str {
    match status {
        RolloutStatus::Completed => "good",
        RolloutStatus::Halted => "bad",
        RolloutStatus::RolledBack => "",
        _ => "warn",
    }
}

/// The state of a rollout: what it is, how far it got, what failed, and what can
/// be done.
fn rollout_state(session: &AdminSession, overview: &RolloutOverview) -> Markup {
    let report = &overview.report;
    let c = &report.counts;
    let total = c.total();
    let done = total - c.unfinished();
    let status = report.status;
    let live = matches!(status, RolloutStatus::Active | RolloutStatus::RollingBack);
    let reached = c.succeeded + c.skipped;
    let counts = [
        ("succeeded", "succeeded", c.succeeded),
        ("failed", "failed", c.failed),
        ("skipped", "skipped", c.skipped),
        ("pending", "pending", c.pending),
        ("running", "running", c.running),
        ("rolled_back", "rolled back", c.rolled_back),
    ];
    html! {
        p {
            "Rollout " strong { (report.rollout_id) } " to version " code { (report.target_version) }
            ", strategy " code { (overview.strategy) } " "
            span #rollout-status class={ "badge " (status_class(status)) } { (status.as_str().replace('_', " ")) }
        }
        p { "Wave " span #rollout-wave { (current_wave(report) + 1) } " of " (report.waves.len().max(1)) }
        label for="rollout-progress" { "Progress" }
        progress #rollout-progress max=(total.max(1)) value=(done) aria-describedby="rollout-done"
            data-poll=(session.url("rollout/progress")) { (done) " of " (total) }
        p #rollout-done { (done) " of " (total) " tenants" }
        p #rollout-counts {
            @for (i, (key, label, n)) in counts.iter().enumerate() {
                @if i > 0 { ", " }
                (label) " " span data-count=(key) { (n) }
            }
        }
        @if let Some(reason) = &report.halted_reason {
            (notice("bad", &format!("Why it halted: {reason}")))
        }
        @if !overview.failed.is_empty() {
            (failed_table(&overview.failed, c.failed))
        }
        @if live {
            p.muted #rollout-live aria-live="polite" { "Updates every second while the rollout runs." }
        }
        div.actions {
            @if status == RolloutStatus::Active {
                (action(session, "rollout/halt", "Halt", "secondary", html! {}))
            }
            @if status == RolloutStatus::Halted || (status == RolloutStatus::Active && c.failed > 0) {
                (action(session, "rollout/resume", "Resume", "", html! {}))
            }
            @if status != RolloutStatus::RolledBack && (c.succeeded + c.failed > 0 || status == RolloutStatus::RollingBack) {
                (action(session, "rollout/rollback", "Roll back", "danger", html! {}))
            }
            @if reached == 0 && status != RolloutStatus::RollingBack {
                (action(
                    session,
                    "rollout/withdraw",
                    &format!("Withdraw migration {}", report.target_version),
                    "danger",
                    html! { input type="hidden" name="version" value=(report.target_version); },
                ))
            }
        }
        @if live { script { (PreEscaped(POLL_SCRIPT)) } }
    }
}

/// A one-button form posting to `path` under the admin base.
fn action(session: &AdminSession, path: &str, label: &str, class: &str, fields: Markup) -> Markup {
    html! {
        form method="post" action=(session.url(path)) {
            (session.csrf_field())
            (fields)
            button class=[(!class.is_empty()).then_some(class)] type="submit" { (label) }
        }
    }
}

/// The first failed tenants with their errors (`failed` of them in all).
fn failed_table(tenants: &[TenantRecord], failed: u64) -> Markup {
    html! {
        h3 { "Failed tenants" }
        @if failed > tenants.len() as u64 {
            p.muted { "The first " (tenants.len()) " of " (failed) "; the rollout API lists them all." }
        }
        div.scroll {
            table {
                thead { tr { th scope="col" { "Tenant" } th scope="col" { "Attempts" } th scope="col" { "Error" } } }
                tbody {
                    @for tenant in tenants {
                        tr {
                            td { code { (tenant.tenant_id) } }
                            td { (tenant.attempts) }
                            td { (tenant.error.as_deref().unwrap_or("no error recorded")) }
                        }
                    }
                }
            }
        }
    }
}

/// The form that starts a rollout: it posts to the preview, which lints first.
fn start_form(session: &AdminSession, form: &MigrationForm, button: &str) -> Markup {
    let chosen = form.strategy.trim();
    let strategies = [
        ("all", "All tenants at once"),
        ("waves:10,50,100", "Waves: 10 %, then 50 %, then all"),
        ("canary:1", "Canary: one tenant first, then all"),
    ];
    html! {
        form method="post" action=(session.url("rollout/preview")) {
            (session.csrf_field())
            label for="migration_sql" { "Migration SQL" }
            textarea #migration_sql name="migration_sql" required spellcheck="false" { (form.migration_sql) }
            div.row {
                div {
                    label for="version" { "Version and name" }
                    input #version name="version" type="text" required value=(form.version())
                        placeholder="20240127120000_add_field" aria-describedby="version-hint";
                }
                div {
                    label for="strategy" { "Strategy" }
                    select #strategy name="strategy" {
                        @for (value, label) in strategies {
                            option value=(value) selected[chosen == value] { (label) }
                        }
                    }
                }
                div {
                    label for="canary_tag" { "Canary tag (optional)" }
                    input #canary_tag name="canary_tag" type="text" value=(form.canary_tag)
                        aria-describedby="canary-hint";
                }
            }
            p.muted #version-hint {
                "A number newer than the latest migration (a timestamp), then a name. The latest migration's own version replaces it, while no tenant applied it."
            }
            p.muted #canary-hint {
                "With a tag, the tenants carrying it go first as the canary wave, then all the others."
            }
            p { button type="submit" { (button) } }
        }
    }
}

/// The linter's findings as a table.
fn findings_table(findings: &[Finding]) -> Markup {
    if findings.is_empty() {
        return html! { p { "The linter found nothing to report." } };
    }
    html! {
        div.scroll {
            table {
                thead { tr {
                    th scope="col" { "Line" } th scope="col" { "Rule" } th scope="col" { "Severity" }
                    th scope="col" { "What" } th scope="col" { "Fix" }
                } }
                tbody {
                    @for finding in findings {
                        tr {
                            td { (finding.line) }
                            td { code { (finding.rule) } }
                            td {
                                @if finding.severity == Severity::Error {
                                    span.badge.bad { "error" }
                                } @else {
                                    span.badge.warn { (finding.severity) }
                                }
                            }
                            td { (finding.message) }
                            td { (finding.hint) }
                        }
                    }
                }
            }
        }
    }
}

/// A tenant's cell of the "Schema" column.
fn schema_cell(row: &TenantRecord) -> Markup {
    let version = row.to_version.or(row.from_version);
    html! {
        @match (row.state, version) {
            (TenantState::Pending, None) => span.muted { "pending" },
            (TenantState::Running, None) => span.muted { "migrating" },
            (_, None) => span.muted { "empty" },
            (_, Some(version)) => code { (version) },
        }
        @if row.state == TenantState::Failed {
            " " span.badge.bad { "failed" }
        }
    }
}

/// Polls the progress every second while the rollout runs and updates the bar,
/// the counts and the status badge; stops when it ends or a poll fails.
const POLL_SCRIPT: &str = r#"
(function () {
  var bar = document.getElementById("rollout-progress");
  if (!bar || !window.fetch) return;
  var kinds = { active: "warn", halted: "bad", completed: "good", rolling_back: "warn", rolled_back: "" };
  var timer = setInterval(function () {
    fetch(bar.getAttribute("data-poll"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (p) {
        bar.max = Math.max(p.total, 1); bar.value = p.done; bar.textContent = p.done + " of " + p.total;
        document.getElementById("rollout-done").textContent = p.done + " of " + p.total + " tenants";
        document.querySelectorAll("[data-count]").forEach(function (el) { el.textContent = p[el.getAttribute("data-count")]; });
        var badge = document.getElementById("rollout-status");
        badge.textContent = p.status.replace("_", " "); badge.className = "badge " + (kinds[p.status] || "");
        document.getElementById("rollout-wave").textContent = p.wave + 1;
        if (p.status !== "active" && p.status !== "rolling_back") {
          clearInterval(timer);
          document.getElementById("rollout-live").textContent = "The rollout stopped; reload the page for failed tenants and actions.";
        }
      })
      .catch(function () { clearInterval(timer); });
  }, 1000);
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StateCounts;

    fn wave(wave: u32, pending: u64, succeeded: u64, failed: u64) -> WaveProgress {
        let counts = StateCounts {
            pending,
            succeeded,
            failed,
            ..StateCounts::default()
        };
        WaveProgress {
            wave,
            counts,
            last_finished_at: None,
        }
    }

    #[test]
    fn the_current_wave_is_the_furthest_that_started() {
        // Halted in the second wave: the third never opened.
        let halted = [wave(0, 0, 2, 0), wave(1, 1, 0, 1), wave(2, 2, 0, 0)];
        assert_eq!(furthest_started(&halted), 1);
        let untouched = [wave(0, 2, 0, 0), wave(1, 2, 0, 0)];
        assert_eq!(furthest_started(&untouched), 0);
        let done = [wave(0, 0, 2, 0), wave(1, 0, 2, 0)];
        assert_eq!(furthest_started(&done), 1);
        assert_eq!(furthest_started(&[]), 0);
    }
}
