use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRef, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{notice, page};
use super::session::{error_page, AdminSession};
use crate::{Tenant, TenantDirectory, TenantFilter, TenantId, TenantStatus};

/// A part of the admin page that another crate (or the host) contributes: a panel
/// above the fleet (the rollout, say) and columns in the fleet table (billing
/// state, schema version). Both default to nothing.
#[async_trait]
pub trait AdminSection: Send + Sync {
    /// The section's panel, or `None` for none. Forms in it post under
    /// [`AdminSession::url`] and carry [`AdminSession::csrf_field`].
    async fn panel(&self, session: &AdminSession) -> Option<Markup> {
        let _ = session;
        None
    }

    /// Columns for one page of the fleet table (at most the page size).
    async fn columns(&self, tenants: &[TenantId]) -> Vec<FleetColumn> {
        let _ = tenants;
        Vec::new()
    }
}

/// One column of the fleet table: a heading and a cell per tenant (missing cells
/// are shown as `—`).
#[derive(Debug, Clone)]
pub struct FleetColumn {
    /// The heading.
    pub header: String,
    /// The cells, by tenant.
    pub cells: HashMap<TenantId, Markup>,
}

impl FleetColumn {
    /// An empty column headed `header`.
    pub fn new(header: impl Into<String>) -> Self {
        Self {
            header: header.into(),
            cells: HashMap::new(),
        }
    }

    /// Sets `tenant`'s cell.
    pub fn cell(mut self, tenant: TenantId, content: Markup) -> Self {
        self.cells.insert(tenant, content);
        self
    }
}

/// The state of the admin page: the tenant directory and the sections that other
/// crates add.
#[derive(Clone)]
pub struct AdminPage {
    directory: Arc<dyn TenantDirectory>,
    sections: Vec<Arc<dyn AdminSection>>,
    page_size: u32,
}

impl fmt::Debug for AdminPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminPage")
            .field("sections", &self.sections.len())
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl AdminPage {
    /// The page over `directory`'s tenants, 50 to a page.
    pub fn new(directory: Arc<dyn TenantDirectory>) -> Self {
        Self {
            directory,
            sections: Vec::new(),
            page_size: 50,
        }
    }

    /// Adds `section` (panels show in the order added).
    pub fn section(mut self, section: Arc<dyn AdminSection>) -> Self {
        self.sections.push(section);
        self
    }

    /// Shows `n` tenants to a page (1 to 500).
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, 500);
        self
    }
}

/// The admin page's query: filters and the keyset page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct FleetQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

impl FleetQuery {
    fn status(&self) -> Option<&str> {
        self.status.as_deref().filter(|s| !s.is_empty())
    }

    fn tag(&self) -> Option<&str> {
        self.tag.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    fn filter(&self, size: u32) -> Result<TenantFilter, String> {
        let mut filter = TenantFilter::all().limit(size);
        if let Some(status) = self.status() {
            if !TenantStatus::NAMES.contains(&status) {
                return Err(format!(
                    "`{status}` is not a tenant state; choose one of {}",
                    TenantStatus::NAMES.join(", ")
                ));
            }
            filter = filter.with_status(status);
        }
        if let Some(tag) = self.tag() {
            filter = filter.with_tag(tag);
        }
        if let Some(after) = self.after.as_deref().filter(|s| !s.is_empty()) {
            let after = TenantId::try_from(after).map_err(|e| e.to_string())?;
            filter = filter.after(after);
        }
        Ok(filter)
    }

    /// The query string of the page after `last`, keeping the filters.
    fn next_page(&self, last: &TenantId) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(status) = self.status() {
            query.append_pair("status", status);
        }
        if let Some(tag) = self.tag() {
            query.append_pair("tag", tag);
        }
        query.append_pair("after", last.as_str());
        query.finish()
    }
}

pub(super) async fn admin_home<S>(
    State(state): State<S>,
    session: AdminSession,
    Query(query): Query<FleetQuery>,
) -> Response
where
    AdminPage: FromRef<S>,
{
    let admin = AdminPage::from_ref(&state);
    let filter = match query.filter(admin.page_size) {
        Ok(filter) => filter,
        Err(message) => {
            return error_page(StatusCode::UNPROCESSABLE_ENTITY, "Bad filter", &message)
        }
    };
    let tenants = match admin.directory.list(&filter).await {
        Ok(tenants) => tenants,
        Err(error) => {
            tracing::error!(%error, "admin page: the tenant directory failed");
            let message = format!("The tenant directory cannot be read: {error}");
            return error_page(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", &message);
        }
    };
    let ids: Vec<TenantId> = tenants.iter().map(|t| t.id.clone()).collect();
    let mut panels = Vec::new();
    let mut columns = Vec::new();
    for section in &admin.sections {
        panels.extend(section.panel(&session).await);
        columns.extend(section.columns(&ids).await);
    }
    let full = tenants.len() as u32 == admin.page_size;
    let body = html! {
        @if let Some(message) = query.notice.as_deref() { (notice("good", message)) }
        @for panel in &panels { (panel) }
        section aria-labelledby="fleet" {
            h2 #fleet { "Tenants" }
            (filter_form(&session, &query))
            (fleet_table(&tenants, &columns))
            nav.actions aria-label="Pages" {
                @if query.after.is_some() { a href=(session.base()) { "First page" } }
                @if let (true, Some(last)) = (full, ids.last()) {
                    a href={ (session.base()) "?" (query.next_page(last)) } rel="next" { "Next page" }
                }
            }
        }
    };
    page("Admin", Some(top_bar(&session)), body).into_response()
}

/// The bar above every admin page: the title and the sign-out button.
pub fn top_bar(session: &AdminSession) -> Markup {
    html! {
        a href=(session.base()) { "tenancy-kit admin" }
        form method="post" action=(session.url("logout")) {
            (session.csrf_field())
            button.secondary type="submit" { "Sign out" }
        }
    }
}

fn filter_form(session: &AdminSession, query: &FleetQuery) -> Markup {
    html! {
        form.row method="get" action=(session.base()) role="search" {
            div {
                label for="status" { "State" }
                select #status name="status" {
                    option value="" { "any" }
                    @for name in TenantStatus::NAMES {
                        option value=(name) selected[query.status() == Some(name)] { (name.replace('_', " ")) }
                    }
                }
            }
            div {
                label for="tag" { "Tag" }
                input #tag name="tag" type="text" value=[query.tag()];
            }
            div { button type="submit" { "Filter" } }
        }
    }
}

fn fleet_table(tenants: &[Tenant], columns: &[FleetColumn]) -> Markup {
    if tenants.is_empty() {
        return html! { p.muted { "No tenants match." } };
    }
    html! {
        div.scroll {
            table {
                thead { tr {
                    th scope="col" { "Tenant" } th scope="col" { "Name" } th scope="col" { "Onboarding" } th scope="col" { "Tags" }
                    @for column in columns { th scope="col" { (column.header) } }
                } }
                tbody {
                    @for tenant in tenants {
                        tr data-tenant=(tenant.id) {
                            td { code { (tenant.id) } }
                            td { (tenant.name) }
                            td { (status_badge(&tenant.status)) }
                            td { (tenant.tags.iter().cloned().collect::<Vec<_>>().join(", ")) }
                            @for column in columns {
                                td { @match column.cells.get(&tenant.id) { Some(cell) => (cell), None => span.muted { "—" } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn status_badge(status: &TenantStatus) -> Markup {
    match status {
        TenantStatus::Ready => html! { span.badge.good { "ready" } },
        TenantStatus::Failed {
            step,
            reason,
            attempts,
        } => html! {
            span.badge.bad { "failed at " (step.as_str().replace('_', " ")) }
            br; small.muted { (reason) " (attempt " (attempts) ")" }
        },
        TenantStatus::Offboarding {
            step, last_error, ..
        } => html! {
            span.badge.warn { "offboarding: " (step.as_str().replace('_', " ")) }
            @if let Some(reason) = last_error { br; small.muted { (reason) } }
        },
        TenantStatus::Retained { until, .. } => html! {
            span.badge.warn { "retained" }
            br; small.muted { "deleted after " (crate::http::rfc3339(*until)) }
        },
        TenantStatus::Deleted { at, .. } => html! {
            span.badge { "deleted" }
            br; small.muted { (crate::http::rfc3339(*at)) }
        },
        other => html! { span.badge.warn { (other.name().replace('_', " ")) } },
    }
}
