//! Customers: create one per tenant, read one back.

use std::collections::BTreeMap;

use tenancy_core::{EmailAddress, TenantId};

use super::error::StripeError;
use super::form::Form;
use super::idempotency::IdempotencyKey;
use super::ids::object_path;
use super::metadata::with_tenant;
use super::stripe_client::StripeClient;
use crate::Customer;

const MAX_NAME_CHARS: usize = 256;

/// Parameters of [`StripeClient::create_customer`]: the tenant (sent as
/// `metadata[tenant_id]`), an optional email and name, more metadata.
#[derive(Debug, Clone)]
pub struct CreateCustomer {
    tenant_id: TenantId,
    email: Option<EmailAddress>,
    name: Option<String>,
    metadata: BTreeMap<String, String>,
    idempotency_key: Option<IdempotencyKey>,
}

impl CreateCustomer {
    /// A customer for `tenant_id`.
    pub fn new(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            email: None,
            name: None,
            metadata: BTreeMap::new(),
            idempotency_key: None,
        }
    }

    /// Sets the billing email.
    pub fn email(mut self, email: EmailAddress) -> Self {
        self.email = Some(email);
        self
    }

    /// Sets the name shown in the dashboard and on invoices (at most 256 characters).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a metadata entry besides `tenant_id`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Uses this key instead of the one derived from the tenant and the parameters.
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    fn form(&self) -> Result<Form, StripeError> {
        if let Some(name) = &self.name {
            if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
                return Err(StripeError::invalid(
                    "name",
                    "the name must have 1 to 256 characters",
                ));
            }
        }
        let metadata = with_tenant(&self.tenant_id, &self.metadata)?;
        Ok(Form::new()
            .optional("email", self.email.as_ref().map(EmailAddress::as_str))
            .optional("name", self.name.as_deref())
            .field("metadata", &metadata))
    }
}

impl StripeClient {
    /// Creates a customer for a tenant (`POST /v1/customers`). Without an explicit
    /// key, the idempotency key is derived from the tenant and the parameters, so a
    /// repeated call within Stripe's 24 hours returns the same customer.
    pub async fn create_customer(&self, params: &CreateCustomer) -> Result<Customer, StripeError> {
        let form = params.form()?;
        let key = IdempotencyKey::or_derive(
            params.idempotency_key.as_ref(),
            "customer.create",
            params.tenant_id.as_str(),
            &form,
        );
        self.post("/v1/customers", &form, &key, "customer").await
    }

    /// Reads a customer (`GET /v1/customers/{id}`). A customer deleted in Stripe is
    /// [`StripeError::Deleted`].
    pub async fn retrieve_customer(&self, customer_id: &str) -> Result<Customer, StripeError> {
        let path = object_path("/v1/customers", "customer", customer_id)?;
        let object: serde_json::Value = self.get(&path, "customer").await?;
        if object.get("deleted") == Some(&serde_json::Value::Bool(true)) {
            return Err(StripeError::Deleted {
                object: "customer",
                id: customer_id.to_owned(),
            });
        }
        serde_json::from_value(object).map_err(|source| StripeError::Decode {
            path,
            expected: "customer",
            source,
        })
    }
}
