//! Microbenchmarks of the hot pieces: signature checks per scheme, record encoding and
//! decoding, and a group-commit append. `cargo bench --bench hot_paths`.

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hookrelay::common::event::Record;
use hookrelay::common::verify::{sign, SchemeKind, Secret, Verifier};
use hookrelay::storage::sled::SledStorage;
use hookrelay::storage::{NewEvent, Storage};

const BODY_BYTES: usize = 1024;

fn body() -> Vec<u8> {
    let mut b = br#"{"action":"bench","pad":""}"#.to_vec();
    b.resize(BODY_BYTES, b' ');
    b
}

fn verify(c: &mut Criterion) {
    let body = body();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Bytes(BODY_BYTES as u64));
    for (kind, secret) in [
        (SchemeKind::Github, "It's a Secret to Everybody"),
        (SchemeKind::Stripe, "whsec_test_secret"),
        (SchemeKind::Slack, "8f742231b10e8888abcd99yyyzzz85a5"),
        (
            SchemeKind::Standard,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
    ] {
        let key = Secret::for_scheme(kind, secret).expect("secret");
        let now = 1_700_000_000;
        let mut headers = http::HeaderMap::new();
        for (n, v) in sign(kind, None, &key, &body, now, Some("msg_1")) {
            headers.insert(n, v.parse().expect("value"));
        }
        let verifier = Verifier {
            kind,
            hmac: None,
            secrets: vec![key],
            tolerance_secs: 300,
            public_url: None,
        };
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| verifier.verify(&headers, &body, now).expect("valid"))
        });
    }
    group.finish();
}

fn record() -> Record {
    Record {
        id: "evt_0123456789abcdef0123456789abcdef".into(),
        channel: "github".into(),
        offset: 123_456,
        received_at_ms: 1_700_000_000_000,
        method: "POST".into(),
        path: "/push".into(),
        query: "ref=main".into(),
        headers: (0..10)
            .map(|i| (format!("x-header-{i}"), b"some header value".to_vec()))
            .collect(),
        body: body(),
        peer: "192.30.252.1:54321".into(),
        scheme: "github".into(),
    }
}

fn codec(c: &mut Criterion) {
    let r = record();
    let bytes = r.encode();
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| b.iter(|| r.encode()));
    group.bench_function("decode", |b| {
        b.iter(|| Record::decode(&bytes).expect("decodes"))
    });
    group.finish();
}

fn append(c: &mut Criterion) {
    const CONCURRENT: usize = 64;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = SledStorage::open(dir.path()).expect("open");
    let event = NewEvent {
        method: "POST".into(),
        path: String::new(),
        query: String::new(),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: Bytes::from(body()),
        peer: "127.0.0.1:1".into(),
        scheme: "github".into(),
        received_at_ms: 1_700_000_000_000,
    };
    let mut group = c.benchmark_group("log");
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    // 64 concurrent appends: each answers only after the flush that covers it.
    group.bench_function("group_commit_append_x64", |b| {
        b.iter_batched(
            || (0..CONCURRENT).map(|_| event.clone()).collect::<Vec<_>>(),
            |events| {
                rt.block_on(async {
                    let tasks: Vec<_> = events
                        .into_iter()
                        .map(|e| {
                            let log = log.clone();
                            tokio::spawn(async move { log.append("bench", e, None).await })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("join").expect("append");
                    }
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, verify, codec, append);
criterion_main!(benches);
