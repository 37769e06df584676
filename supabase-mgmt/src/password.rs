//! Database passwords of provisioned projects.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tenancy_core::SecretString;

use crate::ManagementError;

/// Where [`SupabaseProvisioner`](crate::SupabaseProvisioner) gets a project's
/// database password.
///
/// Supabase never gives a database password back: it is known only to whoever
/// created the project. A provisioner that adopts a project created by an earlier,
/// interrupted attempt (our process crashed, the create timed out) must still return
/// a working connection string, hence two strategies:
///
/// - [`derived`](Self::derived) (recommended): the password is
///   HMAC-SHA256(secret, project name), hex-encoded (256 bits). The same secret and
///   tenant always give the same password, so an adopted project's password is known
///   without any extra call and without storing per-tenant secrets. Keep the secret in
///   your secret store; generate one with [`generate_secret`](Self::generate_secret).
///   Do not rotate it: the provisioner would compute wrong passwords for every
///   existing project it finds or adopts (reset those passwords first).
/// - [`random`](Self::random): 256 fresh bits from the operating system's CSPRNG per
///   project. An adopted project's password cannot be recovered, so it is reset
///   through `PATCH /v1/projects/{ref}/database/password`, which breaks connections
///   that used the old one.
///
/// Either way a password is 64 lowercase hex characters: far above the strength
/// Supabase asks of database passwords, under Postgres' 99-character limit, and free
/// of characters that would need escaping in a connection string.
///
/// ```
/// use supabase_mgmt::DatabasePasswords;
///
/// let secret = DatabasePasswords::generate_secret();
/// let value = secret.expose_str().to_owned();
/// let passwords = DatabasePasswords::derived(secret)?;
/// assert!(!format!("{passwords:?}").contains(&value));
/// # Ok::<(), supabase_mgmt::ManagementError>(())
/// ```
#[derive(Clone)]
pub struct DatabasePasswords {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Derived(SecretString),
    Random,
}

impl fmt::Debug for DatabasePasswords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Derived(secret) => f
                .debug_tuple("DatabasePasswords::Derived")
                .field(secret)
                .finish(),
            Source::Random => f.write_str("DatabasePasswords::Random"),
        }
    }
}

/// The shortest derivation secret accepted, in bytes.
const MIN_SECRET_LEN: usize = 32;
const DERIVATION_LABEL: &[u8] = b"supabase-mgmt/db-password/v1\0";

impl DatabasePasswords {
    /// Passwords derived from `secret` (at least 32 characters) and the project name.
    pub fn derived(secret: SecretString) -> Result<Self, ManagementError> {
        if secret.expose_str().trim().len() < MIN_SECRET_LEN {
            return Err(ManagementError::Config(format!(
                "the password derivation secret must have at least {MIN_SECRET_LEN} characters; generate one with DatabasePasswords::generate_secret()"
            )));
        }
        Ok(Self {
            source: Source::Derived(secret),
        })
    }

    /// A fresh random password per project; adopted projects get their password reset.
    pub fn random() -> Self {
        Self {
            source: Source::Random,
        }
    }

    /// A new random derivation secret (64 hex characters) to store and pass to
    /// [`derived`](Self::derived).
    pub fn generate_secret() -> SecretString {
        random_hex()
    }

    /// Whether an existing project's password can be computed again.
    pub(crate) fn is_derived(&self) -> bool {
        matches!(self.source, Source::Derived(_))
    }

    /// The password for a project named `project_name`.
    pub(crate) fn for_project(&self, project_name: &str) -> Result<SecretString, ManagementError> {
        match &self.source {
            Source::Derived(secret) => derive(secret, project_name),
            Source::Random => Ok(random_hex()),
        }
    }
}

fn derive(secret: &SecretString, project_name: &str) -> Result<SecretString, ManagementError> {
    // HMAC accepts keys of any length; the error case exists only in the trait's signature.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_str().as_bytes()).map_err(|_| {
        ManagementError::Config("the password derivation secret is not a usable HMAC key".into())
    })?;
    mac.update(DERIVATION_LABEL);
    mac.update(project_name.as_bytes());
    Ok(SecretString::new(hex::encode(mac.finalize().into_bytes())))
}

fn random_hex() -> SecretString {
    // `rand::random` draws from the thread-local ChaCha CSPRNG seeded by the OS.
    let bytes: [u8; 32] = rand::random();
    SecretString::new(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    #[test]
    fn derived_passwords_are_stable_per_project_and_differ_between_projects() {
        let passwords = DatabasePasswords::derived(SECRET.into()).unwrap();
        let a1 = passwords.for_project("tenant-acme").unwrap();
        let a2 = passwords.for_project("tenant-acme").unwrap();
        let b = passwords.for_project("tenant-beta").unwrap();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_eq!(a1.expose_str().len(), 64);
        let other_secret = DatabasePasswords::derived(format!("{SECRET}-2").into()).unwrap();
        assert_ne!(other_secret.for_project("tenant-acme").unwrap(), a1);
    }

    #[test]
    fn random_passwords_are_fresh_and_long() {
        let passwords = DatabasePasswords::random();
        let a = passwords.for_project("tenant-acme").unwrap();
        assert_ne!(a, passwords.for_project("tenant-acme").unwrap());
        assert!(
            a.expose_str().chars().all(|c| c.is_ascii_hexdigit()) && a.expose_str().len() == 64
        );
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        let err = DatabasePasswords::derived("short".into()).unwrap_err();
        assert!(matches!(err, ManagementError::Config(_)));
        assert!(!err.to_string().contains("short\""));
        let passwords = DatabasePasswords::derived(SECRET.into()).unwrap();
        assert!(!format!("{passwords:?}").contains("0123456789"));
    }
}
