//! Webhook verification against the physical floor: a bare HMAC-SHA256 of the same bytes.
//!
//! `cargo bench -p stripe-billing --bench verify -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use stripe_billing::{sign, WebhookVerifier};
use time::OffsetDateTime;

const SECRET: &str = "whsec_benchmark_secret_0123456789abcdef";

/// Stripe's example subscription, repeated to `len` bytes.
fn payload(len: usize) -> Vec<u8> {
    let object = stripe_billing::testing::example("subscription").to_string();
    object.bytes().cycle().take(len).collect()
}

fn verify(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let verifier = WebhookVerifier::new(SECRET).unwrap();
    let mut group = c.benchmark_group("verify");
    for (label, len) in [("2KiB", 2 << 10), ("64KiB", 64 << 10)] {
        let body = payload(len);
        let header = sign(&body, &SECRET.into(), now.unix_timestamp());
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(
            BenchmarkId::new("bare_hmac_sha256", label),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                    mac.update(black_box(body));
                    black_box(mac.finalize().into_bytes())
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("webhook_verifier", label),
            &body,
            |b, body| {
                b.iter(|| {
                    verifier
                        .verify_signature_at(black_box(body), Some(black_box(&header)), now)
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
