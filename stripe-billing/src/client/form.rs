//! Request bodies and query strings in Stripe's form encoding: nested maps and lists
//! flattened into bracketed keys (`line_items[0][price]`, `metadata[tenant_id]`,
//! `created[gte]`, `types[]`), in a fixed order.
//!
//! Written here rather than taken from a crate: `serde_urlencoded` does not nest, and
//! `serde_qs` (1.x, form mode) percent-encodes the brackets (`line_items%5B0%5D…`).
//! Stripe accepts both, but its own libraries send literal brackets, and so does this
//! encoder, which keeps request bodies readable in logs and tests: each key segment is
//! percent-encoded on its own and the structural brackets are written as they are.

use std::collections::BTreeMap;

use url::form_urlencoded::byte_serialize;

/// One value of a request body: a scalar, named values, or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormValue {
    /// A plain value, sent as it is.
    Scalar(String),
    /// Named values, sent as `name[key]=…` in this order.
    Map(Vec<(String, FormValue)>),
    /// Values sent as `name[0]=…`, `name[1]=…`.
    List(Vec<FormValue>),
    /// Values sent as `name[]=…` repeated, as list filters are (`types[]`).
    Repeated(Vec<FormValue>),
}

impl From<&str> for FormValue {
    fn from(value: &str) -> Self {
        Self::Scalar(value.to_owned())
    }
}

impl From<String> for FormValue {
    fn from(value: String) -> Self {
        Self::Scalar(value)
    }
}

impl From<bool> for FormValue {
    fn from(value: bool) -> Self {
        Self::Scalar(value.to_string())
    }
}

impl From<u32> for FormValue {
    fn from(value: u32) -> Self {
        Self::Scalar(value.to_string())
    }
}

impl From<i64> for FormValue {
    fn from(value: i64) -> Self {
        Self::Scalar(value.to_string())
    }
}

impl From<&BTreeMap<String, String>> for FormValue {
    fn from(map: &BTreeMap<String, String>) -> Self {
        Self::Map(
            map.iter()
                .map(|(key, value)| (key.clone(), FormValue::from(value.as_str())))
                .collect(),
        )
    }
}

/// An ordered request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Form {
    fields: Vec<(String, FormValue)>,
}

impl Form {
    /// An empty body.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends a field.
    pub(crate) fn field(mut self, name: &str, value: impl Into<FormValue>) -> Self {
        self.fields.push((name.to_owned(), value.into()));
        self
    }

    /// Appends a field when there is a value.
    pub(crate) fn optional<V: Into<FormValue>>(self, name: &str, value: Option<V>) -> Self {
        match value {
            Some(value) => self.field(name, value),
            None => self,
        }
    }

    /// Whether there are no fields.
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The `application/x-www-form-urlencoded` body (or query string).
    pub(crate) fn encode(&self) -> String {
        let mut leaves = Vec::new();
        for (name, value) in &self.fields {
            collect_leaves(vec![name.clone()], value, &mut leaves);
        }
        let pairs: Vec<String> = leaves
            .iter()
            .map(|(segments, value)| format!("{}={}", encode_key(segments), encode(value)))
            .collect();
        pairs.join("&")
    }
}

/// Walks a value depth first, yielding each scalar with the key segments leading to it.
fn collect_leaves(prefix: Vec<String>, value: &FormValue, out: &mut Vec<(Vec<String>, String)>) {
    match value {
        FormValue::Scalar(scalar) => out.push((prefix, scalar.clone())),
        FormValue::Map(entries) => {
            for (key, inner) in entries {
                collect_leaves(child(&prefix, key.clone()), inner, out);
            }
        }
        FormValue::List(items) => {
            for (index, inner) in items.iter().enumerate() {
                collect_leaves(child(&prefix, index.to_string()), inner, out);
            }
        }
        FormValue::Repeated(items) => {
            for inner in items {
                collect_leaves(child(&prefix, String::new()), inner, out);
            }
        }
    }
}

fn child(prefix: &[String], segment: String) -> Vec<String> {
    let mut path = prefix.to_vec();
    path.push(segment);
    path
}

/// `first[second][third]`, each segment percent-encoded on its own; an empty segment
/// is `[]`.
fn encode_key(segments: &[String]) -> String {
    let mut key = String::new();
    for (position, segment) in segments.iter().enumerate() {
        if position == 0 {
            key.push_str(&encode(segment));
        } else {
            key.push('[');
            key.push_str(&encode(segment));
            key.push(']');
        }
    }
    key
}

fn encode(text: &str) -> String {
    byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout_like() -> Form {
        let metadata = FormValue::Map(vec![("tenant_id".into(), "acme".into())]);
        Form::new()
            .field("mode", "subscription")
            .field(
                "line_items",
                FormValue::List(vec![FormValue::Map(vec![
                    ("price".into(), "price_123".into()),
                    ("quantity".into(), 2u32.into()),
                ])]),
            )
            .field("metadata", metadata.clone())
            .field(
                "subscription_data",
                FormValue::Map(vec![
                    ("metadata".into(), metadata),
                    ("trial_period_days".into(), 14u32.into()),
                ]),
            )
    }

    #[test]
    fn nested_maps_and_lists_become_bracketed_keys_in_order() {
        assert_eq!(
            checkout_like().encode(),
            "mode=subscription\
             &line_items[0][price]=price_123\
             &line_items[0][quantity]=2\
             &metadata[tenant_id]=acme\
             &subscription_data[metadata][tenant_id]=acme\
             &subscription_data[trial_period_days]=14"
        );
    }

    #[test]
    fn brackets_stay_literal_and_values_are_percent_encoded() {
        let body = Form::new()
            .field(
                "success_url",
                "https://app.example/ok?s={CHECKOUT_SESSION_ID}&x=1",
            )
            .field("name", "Acme & Sons Pharmacy")
            .field(
                "metadata",
                FormValue::Map(vec![("note [a]".into(), "é".into())]),
            )
            .encode();
        assert_eq!(
            body,
            "success_url=https%3A%2F%2Fapp.example%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D%26x%3D1\
             &name=Acme+%26+Sons+Pharmacy\
             &metadata[note+%5Ba%5D]=%C3%A9"
        );
    }

    #[test]
    fn lists_are_indexed_from_zero_and_empty_containers_send_nothing() {
        let body = Form::new()
            .field("expand", FormValue::List(vec!["a".into(), "b".into()]))
            .field("metadata", FormValue::Map(Vec::new()))
            .optional("customer", None::<&str>)
            .optional("cancel_at_period_end", Some(true))
            .encode();
        assert_eq!(body, "expand[0]=a&expand[1]=b&cancel_at_period_end=true");
    }

    #[test]
    fn an_empty_form_is_an_empty_body() {
        assert!(Form::new().is_empty());
        assert_eq!(Form::new().encode(), "");
    }

    #[test]
    fn repeated_values_share_an_empty_bracket() {
        let query = Form::new()
            .field("limit", 100u32)
            .field(
                "types",
                FormValue::Repeated(vec![
                    "invoice.paid".into(),
                    "customer.subscription.updated".into(),
                ]),
            )
            .field(
                "created",
                FormValue::Map(vec![("gte".into(), 1_767_225_600i64.into())]),
            )
            .field("types_none", FormValue::Repeated(Vec::new()))
            .encode();
        assert_eq!(
            query,
            "limit=100\
             &types[]=invoice.paid\
             &types[]=customer.subscription.updated\
             &created[gte]=1767225600"
        );
    }
}
