use async_trait::async_trait;

use crate::{BackendError, DatabaseTarget, EmailAddress, Tenant};

/// The tenant's first admin user, as created by an [`AdminUserCreator`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminUser {
    /// The user's id in the system that holds it (an Auth user id, a row id).
    pub user_id: String,
    /// The user's email.
    pub email: EmailAddress,
    /// `false` when the user already existed and was adopted.
    pub created: bool,
}

impl AdminUser {
    /// Describes an admin user.
    pub fn new(user_id: impl Into<String>, email: EmailAddress, created: bool) -> Self {
        Self {
            user_id: user_id.into(),
            email,
            created,
        }
    }
}

/// Creates the first admin user of a tenant.
///
/// Implementations must be idempotent: when a user with the tenant's admin email
/// already exists, return it (with `created: false`) instead of failing.
#[async_trait]
pub trait AdminUserCreator: Send + Sync {
    /// Creates (or finds) the admin user of `tenant` in its `database`.
    async fn create_admin(
        &self,
        tenant: &Tenant,
        database: &DatabaseTarget,
    ) -> Result<AdminUser, BackendError>;
}
