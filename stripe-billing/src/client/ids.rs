//! Stripe object ids, checked before they go into a path.

use super::error::StripeError;

/// The longest id accepted (Stripe's ids are far shorter).
const MAX_ID_LEN: usize = 255;

/// `{collection}/{id}` after checking that `id` looks like a Stripe id (letters,
/// digits and `_`), so that no input can reach another path.
pub(crate) fn object_path(
    collection: &str,
    param: &'static str,
    id: &str,
) -> Result<String, StripeError> {
    check_id(param, id)?;
    Ok(format!("{collection}/{id}"))
}

/// Checks that `id` looks like a Stripe id: 1 to 255 letters, digits and `_`.
pub(crate) fn check_id(param: &'static str, id: &str) -> Result<(), StripeError> {
    let usable = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if usable {
        Ok(())
    } else {
        let shown: String = id.chars().take(64).collect();
        Err(StripeError::invalid(
            param,
            format!(
                "{shown:?} is not a stripe id; pass the id Stripe returned (letters, digits and _)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_they_reach_a_path() {
        assert_eq!(
            object_path(
                "/v1/subscriptions",
                "subscription",
                "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
            )
            .unwrap(),
            "/v1/subscriptions/sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
        );
        for bad in ["", "../customers", "sub_1?expand=x", "sub 1", "sub_%2F"] {
            let error = object_path("/v1/subscriptions", "subscription", bad).unwrap_err();
            assert!(
                matches!(
                    error,
                    StripeError::InvalidParameter {
                        param: "subscription",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }
}
