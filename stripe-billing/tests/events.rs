//! Decoding events built from Stripe's own example objects.

mod common;

use common::{
    checkout_session, decode, envelope, example, invoice, subscription, InvoiceShape, CUSTOMER,
    SUBSCRIPTION, T0,
};
use serde_json::json;
use stripe_billing::{
    CheckoutMode, Event, EventObject, EventType, PaymentStatus, PriceInterval, SubscriptionStatus,
    WebhookError,
};

#[test]
fn stripes_example_event_decodes_as_an_unknown_type() {
    let event = decode(&example("event"));
    assert_eq!(event.id, "evt_1Pgc76B7WZ01zgkWwyRHS12y");
    assert_eq!(event.event_type, EventType::Unknown("plan.created".into()));
    assert_eq!(event.created.unix_timestamp(), 1_234_567_890);
    assert!(!event.livemode);
    assert_eq!(event.api_version, None);
    let EventObject::Other(object) = &event.data.object else {
        panic!("{event:?}")
    };
    assert_eq!(object["object"], "plan");
}

#[test]
fn subscription_events_carry_a_typed_subscription() {
    for (name, expected) in [
        (
            "customer.subscription.created",
            EventType::CustomerSubscriptionCreated,
        ),
        (
            "customer.subscription.updated",
            EventType::CustomerSubscriptionUpdated,
        ),
        (
            "customer.subscription.deleted",
            EventType::CustomerSubscriptionDeleted,
        ),
        (
            "customer.subscription.trial_will_end",
            EventType::CustomerSubscriptionTrialWillEnd,
        ),
    ] {
        let event = decode(&envelope(name, example("subscription"), T0));
        assert_eq!(event.event_type, expected);
        assert_eq!(event.event_type.as_str(), name);
        let EventObject::Subscription(sub) = &event.data.object else {
            panic!("{event:?}")
        };
        assert_eq!(sub.id, SUBSCRIPTION);
        assert_eq!(sub.customer, CUSTOMER);
        assert_eq!(sub.status, SubscriptionStatus::Active);
        assert_eq!(
            sub.price_ids().collect::<Vec<_>>(),
            ["price_1PgafmB7WZ01zgkW6dKueIc5"]
        );
        let price = &sub.items.data[0].price;
        assert_eq!(
            price.recurring.as_ref().unwrap().interval,
            PriceInterval::Month
        );
        assert_eq!(price.unit_amount, Some(2000));
        assert_eq!(
            sub.current_period_end().unwrap().unix_timestamp(),
            976_287_773
        );
        assert_eq!(sub.trial_end.unwrap().unix_timestamp(), 1_234_567_890);
        assert!(sub.cancel_at_period_end);
    }
}

#[test]
fn every_subscription_status_and_unknown_ones_decode() {
    let statuses = [
        ("trialing", SubscriptionStatus::Trialing),
        ("active", SubscriptionStatus::Active),
        ("past_due", SubscriptionStatus::PastDue),
        ("canceled", SubscriptionStatus::Canceled),
        ("unpaid", SubscriptionStatus::Unpaid),
        ("incomplete", SubscriptionStatus::Incomplete),
        ("incomplete_expired", SubscriptionStatus::IncompleteExpired),
        ("paused", SubscriptionStatus::Paused),
        (
            "on_vacation",
            SubscriptionStatus::Unknown("on_vacation".into()),
        ),
    ];
    for (raw, expected) in statuses {
        let event = decode(&envelope(
            "customer.subscription.updated",
            subscription(raw, "price_x", None),
            T0,
        ));
        let EventObject::Subscription(sub) = &event.data.object else {
            panic!()
        };
        assert_eq!(sub.status, expected);
        assert_eq!(sub.status.as_str(), raw);
    }
}

#[test]
fn checkout_session_completed_carries_the_session() {
    let event = decode(&envelope(
        "checkout.session.completed",
        checkout_session("acme", "paid"),
        T0,
    ));
    let EventObject::CheckoutSession(session) = &event.data.object else {
        panic!()
    };
    assert_eq!(session.mode, CheckoutMode::Subscription);
    assert_eq!(session.payment_status, PaymentStatus::Paid);
    assert_eq!(session.client_reference_id.as_deref(), Some("acme"));
    assert_eq!(
        session.customer_details.as_ref().unwrap().email.as_deref(),
        Some("example@example.com")
    );
    assert_eq!(event.declared_tenant(), Some("acme"));
    assert_eq!(event.customer_id(), Some(CUSTOMER));
    // Stripe's example as is (a payment-mode session) decodes too.
    let event = decode(&envelope(
        "checkout.session.completed",
        example("checkout_session"),
        T0,
    ));
    let EventObject::CheckoutSession(session) = &event.data.object else {
        panic!()
    };
    assert_eq!(
        (session.mode.clone(), session.subscription.clone()),
        (CheckoutMode::Payment, None)
    );
}

#[test]
fn invoices_name_their_subscription_in_either_api_shape() {
    for event_type in [
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.paid",
    ] {
        for shape in [InvoiceShape::TopLevel, InvoiceShape::Parent] {
            let event = decode(&envelope(event_type, invoice(shape, 9900), T0));
            let EventObject::Invoice(invoice) = &event.data.object else {
                panic!()
            };
            assert_eq!(invoice.subscription_id(), Some(SUBSCRIPTION), "{shape:?}");
            assert_eq!(invoice.customer.as_deref(), Some(CUSTOMER));
        }
    }
    // Stripe's example as is: only the new shape, with a placeholder id.
    let event = decode(&envelope("invoice.paid", example("invoice"), T0));
    let EventObject::Invoice(invoice) = &event.data.object else {
        panic!()
    };
    assert_eq!(invoice.subscription_id(), Some("subscription"));
}

#[test]
fn invoice_subscription_metadata_names_the_tenant() {
    let mut object = invoice(InvoiceShape::Parent, 9900);
    object["parent"]["subscription_details"]["metadata"] = json!({ "tenant_id": "acme" });
    assert_eq!(
        decode(&envelope("invoice.paid", object, T0)).declared_tenant(),
        Some("acme")
    );
}

#[test]
fn expanded_related_objects_decode_to_their_ids() {
    let mut object = example("subscription");
    object["customer"] = example("customer");
    object["latest_invoice"] = example("invoice");
    let event = decode(&envelope("customer.subscription.updated", object, T0));
    let EventObject::Subscription(sub) = &event.data.object else {
        panic!()
    };
    assert_eq!(sub.customer, CUSTOMER);
    assert_eq!(
        sub.latest_invoice.as_deref(),
        Some("in_1Pgc6tB7WZ01zgkWu9fdqL6I")
    );
}

#[test]
fn previous_attributes_are_kept() {
    let mut event = envelope("customer.subscription.updated", example("subscription"), T0);
    event["data"]["previous_attributes"] = json!({ "status": "trialing" });
    let event = decode(&event);
    assert_eq!(
        event.data.previous_attributes.unwrap()["status"],
        "trialing"
    );
}

#[test]
fn a_known_type_with_the_wrong_object_is_an_error_naming_the_type() {
    let event = envelope("invoice.paid", example("subscription"), T0);
    let error = Event::from_slice(event.to_string().as_bytes()).unwrap_err();
    assert!(matches!(error, WebhookError::NotAnEvent(_)), "{error:?}");
    assert!(error.to_string().contains("invoice.paid"), "{error}");
}

#[test]
fn a_missing_envelope_field_is_an_error() {
    for field in ["id", "type", "created", "data"] {
        let mut event = envelope("invoice.paid", example("invoice"), T0);
        event.as_object_mut().unwrap().remove(field);
        let error = Event::from_slice(event.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(error, WebhookError::NotAnEvent(_)),
            "{field}: {error:?}"
        );
        assert!(error.to_string().contains(field), "{error}");
    }
}
