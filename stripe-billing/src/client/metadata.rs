//! Metadata sent with objects: the tenant id plus the caller's own keys, within
//! Stripe's limits.

use std::collections::BTreeMap;

use tenancy_core::TenantId;

use super::error::StripeError;
use crate::TENANT_ID_METADATA_KEY;

const MAX_KEYS: usize = 50;
const MAX_KEY_CHARS: usize = 40;
const MAX_VALUE_CHARS: usize = 500;

/// The metadata of a request: `tenant_id` always, then the caller's keys.
pub(crate) fn with_tenant(
    tenant_id: &TenantId,
    extra: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, StripeError> {
    if extra.contains_key(TENANT_ID_METADATA_KEY) {
        return Err(refuse(
            "tenant_id is set from the tenant; do not pass it as extra metadata",
        ));
    }
    if extra.len() + 1 > MAX_KEYS {
        return Err(refuse("stripe accepts at most 50 metadata keys"));
    }
    for (key, value) in extra {
        check_entry(key, value)?;
    }
    let mut metadata = extra.clone();
    metadata.insert(
        TENANT_ID_METADATA_KEY.to_owned(),
        tenant_id.as_str().to_owned(),
    );
    Ok(metadata)
}

fn check_entry(key: &str, value: &str) -> Result<(), StripeError> {
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return Err(refuse(format!("key {key:?} must have 1 to 40 characters")));
    }
    if key.contains(['[', ']']) {
        return Err(refuse(format!(
            "key {key:?} must not contain square brackets"
        )));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(refuse(format!(
            "the value of {key:?} is longer than 500 characters"
        )));
    }
    Ok(())
}

fn refuse(reason: impl Into<String>) -> StripeError {
    StripeError::invalid("metadata", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::new("acme").unwrap()
    }

    fn extra(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_tenant_id_is_always_added() {
        let metadata = with_tenant(&tenant(), &extra(&[("plan", "starter")])).unwrap();
        assert_eq!(
            metadata,
            extra(&[("plan", "starter"), ("tenant_id", "acme")])
        );
    }

    #[test]
    fn entries_beyond_stripe_limits_are_refused() {
        let long_key = "k".repeat(41);
        let long_value = "v".repeat(501);
        let too_many: Vec<(String, String)> =
            (0..50).map(|i| (format!("k{i}"), "v".into())).collect();
        let cases = [
            extra(&[("tenant_id", "other")]),
            extra(&[("", "v")]),
            extra(&[(long_key.as_str(), "v")]),
            extra(&[("a[b]", "v")]),
            extra(&[("note", long_value.as_str())]),
            too_many.into_iter().collect(),
        ];
        for case in cases {
            let error = with_tenant(&tenant(), &case).unwrap_err();
            assert!(
                matches!(
                    error,
                    StripeError::InvalidParameter {
                        param: "metadata",
                        ..
                    }
                ),
                "{error}"
            );
        }
    }
}
