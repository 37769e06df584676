use serde::Deserialize;

/// An organization the token can see (`OrganizationResponseV1`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Organization {
    /// The slug that names the organization in requests (`organization_slug`).
    pub slug: String,
    /// Its display name.
    pub name: String,
}
