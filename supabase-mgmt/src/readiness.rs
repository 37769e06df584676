//! Waiting for a new project: its status, then the health of its services.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tenancy_core::RetryPolicy;
use tokio::time::Instant;

use crate::{
    ManagementClient, ManagementError, Project, ProjectStatus, Readiness, ServiceHealth,
    ServiceName,
};

/// A callback told about every poll, e.g. to drive a CLI spinner.
pub type ProgressCallback = Arc<dyn Fn(&ReadinessProgress) + Send + Sync>;

/// How [`ManagementClient::wait_until_ready_with`] waits.
///
/// ```
/// use std::time::Duration;
/// use supabase_mgmt::{ServiceName, WaitOptions};
///
/// let options = WaitOptions::new(Duration::from_secs(600))
///     .services(vec![ServiceName::Db, ServiceName::Pooler, ServiceName::Auth])
///     .on_progress(|progress| eprintln!("{progress}"));
/// assert_eq!(options.timeout(), Duration::from_secs(600));
/// ```
#[derive(Clone)]
pub struct WaitOptions {
    timeout: Duration,
    services: Vec<ServiceName>,
    poll: Option<RetryPolicy>,
    progress: Option<ProgressCallback>,
    restoring: bool,
}

impl fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOptions")
            .field("timeout", &self.timeout)
            .field("services", &self.services)
            .field("poll", &self.poll)
            .field("progress", &self.progress.is_some())
            .field("restoring", &self.restoring)
            .finish()
    }
}

impl WaitOptions {
    /// Waits at most `timeout` for the project and for `db` and `pooler` to be healthy.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            services: vec![ServiceName::Db, ServiceName::Pooler],
            poll: None,
            progress: None,
            restoring: false,
        }
    }

    /// Keeps waiting while the project is still `INACTIVE`: for a wait that follows
    /// [`ManagementClient::restore_project`], whose effect on the status takes a
    /// moment to show.
    pub fn restoring(mut self, restoring: bool) -> Self {
        self.restoring = restoring;
        self
    }

    /// The services that must be `ACTIVE_HEALTHY` (none: the project status suffices).
    pub fn services(mut self, services: Vec<ServiceName>) -> Self {
        self.services = services;
        self
    }

    /// Spaces polls with this policy's backoff instead of the client's.
    pub fn poll_policy(mut self, policy: RetryPolicy) -> Self {
        self.poll = Some(policy);
        self
    }

    /// Calls `callback` after every poll.
    pub fn on_progress(
        mut self,
        callback: impl Fn(&ReadinessProgress) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(callback));
        self
    }

    /// The overall timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// What one poll saw.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ReadinessStage {
    /// The project's status, not yet `ACTIVE_HEALTHY`.
    Project(ProjectStatus),
    /// The project is up; these services are not healthy yet.
    Services(Vec<ServiceHealth>),
    /// The project is up but its health endpoint does not know it yet (404).
    HealthNotFound,
    /// A poll failed with a retryable error; waiting goes on.
    PollFailed(String),
    /// Everything is ready.
    Ready,
}

/// Progress of a wait, given to the [`WaitOptions::on_progress`] callback and traced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReadinessProgress {
    /// The project ref.
    pub project_ref: String,
    /// The poll number, from 1.
    pub poll: u32,
    /// Time since the wait began.
    pub elapsed: Duration,
    /// What this poll saw.
    pub stage: ReadinessStage,
}

impl fmt::Display for ReadinessStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Project(status) => write!(f, "project {status}"),
            Self::Services(pending) => {
                let list: Vec<String> = pending
                    .iter()
                    .map(|s| format!("{} {}", s.name, s.status))
                    .collect();
                write!(f, "project ACTIVE_HEALTHY, waiting for {}", list.join(", "))
            }
            Self::HealthNotFound => f.write_str("project ACTIVE_HEALTHY, health not reported yet"),
            Self::PollFailed(error) => write!(f, "poll failed ({error})"),
            Self::Ready => f.write_str("ready"),
        }
    }
}

impl fmt::Display for ReadinessProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "project {} after {:.0?}: {}",
            self.project_ref, self.elapsed, self.stage
        )
    }
}

impl ManagementClient {
    /// Waits until the project is `ACTIVE_HEALTHY` and its `db` and `pooler` services
    /// are healthy; see [`wait_until_ready_with`](Self::wait_until_ready_with).
    pub async fn wait_until_ready(
        &self,
        project_ref: &str,
        timeout: Duration,
    ) -> Result<Project, ManagementError> {
        self.wait_until_ready_with(project_ref, &WaitOptions::new(timeout))
            .await
    }

    /// Polls `GET /v1/projects/{ref}` until the project is `ACTIVE_HEALTHY`, then
    /// `GET /v1/projects/{ref}/health` until every requested service is healthy,
    /// spacing polls with the retry policy's backoff.
    ///
    /// Keeps waiting on `COMING_UP`, `ACTIVE_UNHEALTHY`, `RESTORING`, `UPGRADING`,
    /// `RESTARTING`, `RESIZING`, `UNKNOWN` (and on statuses this crate does not know),
    /// on a health answer of 404 and on retryable errors; fails at once with
    /// [`ManagementError::ProjectFailed`] on `INIT_FAILED`, `GOING_DOWN`, `REMOVED`,
    /// `INACTIVE` (unless [`WaitOptions::restoring`]), `PAUSE_FAILED` and
    /// `RESTORE_FAILED`, and with [`ManagementError::NotReady`] when the timeout passes.
    pub async fn wait_until_ready_with(
        &self,
        project_ref: &str,
        options: &WaitOptions,
    ) -> Result<Project, ManagementError> {
        self.wait_for(project_ref, options, || {
            self.poll_once(project_ref, options)
        })
        .await
    }

    /// Waits until a project whose restore was requested
    /// ([`restore_project`](Self::restore_project)) is `ACTIVE_HEALTHY` with `db` and
    /// `pooler` healthy: [`wait_until_ready_with`](Self::wait_until_ready_with) with
    /// [`WaitOptions::restoring`], since the status may still say `INACTIVE` for a
    /// moment after the request.
    pub async fn wait_until_restored(
        &self,
        project_ref: &str,
        timeout: Duration,
    ) -> Result<Project, ManagementError> {
        let options = WaitOptions::new(timeout).restoring(true);
        self.wait_until_ready_with(project_ref, &options).await
    }

    /// Waits until the project is paused (`INACTIVE`); see
    /// [`wait_until_paused_with`](Self::wait_until_paused_with).
    pub async fn wait_until_paused(
        &self,
        project_ref: &str,
        timeout: Duration,
    ) -> Result<Project, ManagementError> {
        self.wait_until_paused_with(project_ref, &WaitOptions::new(timeout))
            .await
    }

    /// Polls `GET /v1/projects/{ref}` until the project is `INACTIVE`, after
    /// [`pause_project`](Self::pause_project), spacing polls as
    /// [`wait_until_ready_with`](Self::wait_until_ready_with) does (the options'
    /// services are not checked: a paused project's services are down).
    ///
    /// Keeps waiting on `PAUSING`, on a status that does not show the pause yet
    /// (`ACTIVE_HEALTHY`, …) and on retryable errors; fails at once with
    /// [`ManagementError::ProjectFailed`] on `PAUSE_FAILED`, `GOING_DOWN`, `REMOVED`,
    /// `INIT_FAILED` and `RESTORE_FAILED`, and with [`ManagementError::NotReady`]
    /// when the timeout passes.
    pub async fn wait_until_paused_with(
        &self,
        project_ref: &str,
        options: &WaitOptions,
    ) -> Result<Project, ManagementError> {
        self.wait_for(project_ref, options, || self.poll_paused(project_ref))
            .await
    }

    /// Calls `poll_once` until it reports the wanted state, an error that waiting
    /// does not repair, or the options' timeout.
    async fn wait_for<F, Fut>(
        &self,
        project_ref: &str,
        options: &WaitOptions,
        poll_once: F,
    ) -> Result<Project, ManagementError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Poll, ManagementError>>,
    {
        let started = Instant::now();
        let mut last_seen = String::from("nothing yet");
        let polling = self.poll_until(project_ref, options, started, &mut last_seen, poll_once);
        match tokio::time::timeout(options.timeout, polling).await {
            Ok(result) => result,
            Err(_) => Err(ManagementError::NotReady {
                project_ref: project_ref.to_owned(),
                waited: started.elapsed(),
                last_status: last_seen,
            }),
        }
    }

    async fn poll_until<F, Fut>(
        &self,
        project_ref: &str,
        options: &WaitOptions,
        started: Instant,
        last_seen: &mut String,
        poll_once: F,
    ) -> Result<Project, ManagementError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Poll, ManagementError>>,
    {
        let policy = options.poll.as_ref().unwrap_or(self.retry_policy());
        let mut poll = 0;
        loop {
            poll += 1;
            let stage = match poll_once().await {
                Ok(Poll::Ready(project)) => {
                    report(options, project_ref, poll, started, ReadinessStage::Ready);
                    return Ok(*project);
                }
                Ok(Poll::Waiting(stage)) => stage,
                // Waiting longer never helps such a project (provisioning again may).
                Err(error @ ManagementError::ProjectFailed { .. }) => return Err(error),
                Err(error) if error.is_retryable() => ReadinessStage::PollFailed(error.to_string()),
                Err(error) => return Err(error),
            };
            *last_seen = stage.to_string();
            report(options, project_ref, poll, started, stage);
            tokio::time::sleep(policy.backoff(poll)).await;
        }
    }

    async fn poll_paused(&self, project_ref: &str) -> Result<Poll, ManagementError> {
        let project = self.get_project(project_ref).await?;
        match project.status {
            ProjectStatus::Inactive => Ok(Poll::Ready(Box::new(project))),
            ProjectStatus::PauseFailed
            | ProjectStatus::GoingDown
            | ProjectStatus::Removed
            | ProjectStatus::InitFailed
            | ProjectStatus::RestoreFailed => Err(ManagementError::ProjectFailed {
                project_ref: project_ref.to_owned(),
                status: project.status,
            }),
            status => Ok(Poll::Waiting(ReadinessStage::Project(status))),
        }
    }

    async fn poll_once(
        &self,
        project_ref: &str,
        options: &WaitOptions,
    ) -> Result<Poll, ManagementError> {
        let services = options.services.as_slice();
        let project = self.get_project(project_ref).await?;
        let still_paused = options.restoring && project.status == ProjectStatus::Inactive;
        match project.status.readiness() {
            Readiness::Failed if still_paused => {
                return Ok(Poll::Waiting(ReadinessStage::Project(project.status)))
            }
            Readiness::Failed => {
                return Err(ManagementError::ProjectFailed {
                    project_ref: project_ref.to_owned(),
                    status: project.status,
                })
            }
            Readiness::Waiting => {
                return Ok(Poll::Waiting(ReadinessStage::Project(project.status)))
            }
            _ => {}
        }
        if services.is_empty() {
            return Ok(Poll::Ready(Box::new(project)));
        }
        let health = match self.project_health(project_ref, services).await {
            Err(ManagementError::Api { status: 404, .. }) => {
                return Ok(Poll::Waiting(ReadinessStage::HealthNotFound))
            }
            other => other?,
        };
        let pending = pending_services(services, health);
        if pending.is_empty() {
            Ok(Poll::Ready(Box::new(project)))
        } else {
            Ok(Poll::Waiting(ReadinessStage::Services(pending)))
        }
    }
}

enum Poll {
    Ready(Box<Project>),
    Waiting(ReadinessStage),
}

/// The requested services that are not healthy, including any missing from the answer.
fn pending_services(requested: &[ServiceName], health: Vec<ServiceHealth>) -> Vec<ServiceHealth> {
    let missing = requested
        .iter()
        .filter(|name| !health.iter().any(|h| &h.name == *name));
    let mut pending: Vec<ServiceHealth> = missing
        .map(|name| ServiceHealth {
            name: name.clone(),
            status: crate::HealthStatus::ComingUp,
            info: None,
            error: Some("not reported".into()),
        })
        .collect();
    pending.extend(
        health
            .into_iter()
            .filter(|h| requested.contains(&h.name) && !h.is_healthy()),
    );
    pending
}

fn report(
    options: &WaitOptions,
    project_ref: &str,
    poll: u32,
    started: Instant,
    stage: ReadinessStage,
) {
    let progress = ReadinessProgress {
        project_ref: project_ref.to_owned(),
        poll,
        elapsed: started.elapsed(),
        stage,
    };
    tracing::info!(
        project_ref,
        poll,
        elapsed_ms = progress.elapsed.as_millis() as u64,
        "{progress}"
    );
    if let Some(callback) = &options.progress {
        callback(&progress);
    }
}
