//! Property tests of the `Stripe-Signature` parser, the verifier and the event decoder
//! on arbitrary input. Raise `PROPTEST_CASES` to run them longer.

mod common;

use common::{envelope, example, T0};
use proptest::prelude::*;
use serde_json::Value;
use stripe_billing::{
    sign, Event, EventObject, EventType, SignatureHeader, WebhookError, WebhookVerifier,
};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T0).unwrap()
}

/// Arbitrary JSON, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The types the crate names, plus one it does not.
fn event_types() -> Vec<&'static str> {
    let mut types = stripe_billing::EventType::NAMED.to_vec();
    types.push("customer.created");
    types
}

fn fixture_for(event_type: &str) -> Value {
    match event_type.split('.').next() {
        Some("checkout") => example("checkout_session"),
        Some("invoice") => example("invoice"),
        _ if event_type.starts_with("customer.subscription") => example("subscription"),
        _ => example("customer"),
    }
}

/// Replaces the value at a path of object keys chosen by `picks` with `replacement`.
fn mutate(value: &mut Value, picks: &[prop::sample::Index], replacement: Value) {
    let mut pointer = String::new();
    let mut current = &*value;
    for pick in picks {
        let Some(map) = current.as_object().filter(|m| !m.is_empty()) else {
            break;
        };
        let (key, next) = map.iter().nth(pick.index(map.len())).unwrap();
        pointer.push('/');
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        current = next;
    }
    *value.pointer_mut(&pointer).unwrap() = replacement;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::proptest_cases(256)))]

    #[test]
    fn the_header_parser_never_panics(header in ".{0,200}") {
        let _ = SignatureHeader::parse(&header);
    }

    #[test]
    fn the_header_parser_accepts_near_misses_only_with_one_timestamp(header in "[tv01=, a-f9x-]{0,160}") {
        let keys = || header.split(',').filter_map(|item| item.split_once('=')).map(|(key, _)| key.trim());
        if let Ok(parsed) = SignatureHeader::parse(&header) {
            prop_assert_eq!(keys().filter(|key| *key == "t").count(), 1);
            prop_assert_eq!(keys().filter(|key| *key == "v1").count(), parsed.signatures().len());
            prop_assert!(parsed.timestamp() >= 0);
        }
    }

    #[test]
    fn well_formed_headers_parse_to_what_they_say(
        t in 0..i64::MAX,
        signatures in prop::collection::vec(any::<[u8; 32]>(), 0..=stripe_billing::MAX_SIGNATURES),
        extras in prop::collection::vec(("(v0|v2|scheme|x)", "[a-z0-9]{0,20}"), 0..4),
        t_position in any::<prop::sample::Index>(),
    ) {
        let mut items: Vec<String> = signatures.iter().map(|s| format!("v1={}", hex::encode(s))).collect();
        items.extend(extras.iter().map(|(k, v)| format!("{k}={v}")));
        items.insert(t_position.index(items.len() + 1), format!("t={t}"));
        let parsed = SignatureHeader::parse(&items.join(",")).unwrap();
        prop_assert_eq!(parsed.timestamp(), t);
        prop_assert_eq!(parsed.signatures(), &signatures[..]);
    }

    #[test]
    fn signing_then_verifying_any_payload_succeeds(payload in prop::collection::vec(any::<u8>(), 0..4096), skew in -300i64..=300) {
        let verifier = WebhookVerifier::new("whsec_prop").unwrap();
        let header = sign(&payload, &"whsec_prop".into(), T0 + skew);
        prop_assert!(verifier.verify_signature_at(&payload, Some(&header), now()).is_ok());
        let mut tampered = payload.clone();
        tampered.push(b'x');
        let rejected = matches!(
            verifier.verify_signature_at(&tampered, Some(&header), now()),
            Err(WebhookError::NoMatchingSignature { .. })
        );
        prop_assert!(rejected);
    }

    #[test]
    fn the_verifier_never_panics(payload in prop::collection::vec(any::<u8>(), 0..512), header in prop::option::of(".{0,200}")) {
        let verifier = WebhookVerifier::new("whsec_prop").unwrap();
        let _ = verifier.verify_at(&payload, header.as_deref(), now());
    }

    #[test]
    fn the_decoder_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Event::from_slice(&body);
    }

    #[test]
    fn the_decoder_never_panics_on_json(value in any_json()) {
        let result = Event::from_slice(value.to_string().as_bytes());
        prop_assert!(!matches!(result, Err(WebhookError::BodyNotJson(_))), "valid JSON is never `BodyNotJson`");
    }

    #[test]
    fn mutated_real_events_decode_or_fail_cleanly(
        event_type in prop::sample::select(event_types()),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..5),
        replacement in any_json(),
    ) {
        let mut event = envelope(event_type, fixture_for(event_type), T0);
        mutate(&mut event, &picks, replacement);
        match Event::from_slice(event.to_string().as_bytes()) {
            Ok(decoded) => prop_assert_eq!(decoded.id.is_empty(), event["id"] == ""),
            Err(error) => prop_assert!(matches!(error, WebhookError::NotAnEvent(_)), "{:?}", error),
        }
    }

    #[test]
    fn any_unknown_event_type_decodes(event_type in "[a-z_]{1,12}\\.[a-z_.]{1,24}", object in any_json()) {
        prop_assume!(!EventType::NAMED.contains(&event_type.as_str()));
        let event = Event::from_slice(envelope(&event_type, object.clone(), T0).to_string().as_bytes()).unwrap();
        prop_assert_eq!(event.event_type, EventType::Unknown(event_type));
        // Compare with the object as serde_json reads it back (floats may not round-trip exactly).
        let expected: Value = serde_json::from_str(&object.to_string()).unwrap();
        prop_assert_eq!(event.data.object, EventObject::Other(expected));
    }
}
