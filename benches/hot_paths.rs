//! Microbenchmarks of the hot pieces: signature checks per preset (1 KiB and 25 KiB
//! bodies), record encoding and decoding, a group-commit append, and finding a channel's
//! config among the most a config may hold.
//! `cargo bench --bench hot_paths`.

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hookrelay::common::event::Record;
use hookrelay::common::verify::{
    sign_body, sign_for_url, sign_with_private_key, SchemeKind, Secret, Verifier,
};
use hookrelay::storage::sled::SledStorage;
use hookrelay::storage::{NewEvent, Storage};

// Only some of the shared test keys are used here.
#[allow(dead_code)]
#[path = "../tests/common/keys.rs"]
mod keys;

const BODY_BYTES: usize = 1024;
/// The two body sizes every scheme is measured at: a typical event and a large one.
const VERIFY_BODY_BYTES: [(usize, &str); 2] = [(1024, "1KiB"), (25 * 1024, "25KiB")];
const NOW: i64 = 1_700_000_000;
const PUBLIC_URL: &str = "https://relay.example.com/hooks/bench?x=1";

fn body() -> Vec<u8> {
    sized_body(BODY_BYTES)
}

fn sized_body(len: usize) -> Vec<u8> {
    let mut b = br#"{"action":"bench","pad":""}"#.to_vec();
    b.resize(len, b' ');
    b
}

/// What a channel of `kind` configures, and what its sender signs with.
fn keys_for(kind: SchemeKind) -> (&'static str, &'static str) {
    match kind {
        SchemeKind::Standard => ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""),
        SchemeKind::Discord => (keys::ED_PUBLIC_HEX, keys::ED_SEED_HEX),
        SchemeKind::Telnyx => (keys::ED_PUBLIC_B64, keys::ED_SEED_HEX),
        SchemeKind::Sendgrid => (keys::P256_SPKI_B64, keys::P256_PKCS8_B64),
        _ => ("It's a Secret to Everybody", ""),
    }
}

/// A request of `len` bytes signed for `kind` at `NOW`, and the channel's verifier.
fn signed(kind: SchemeKind, len: usize) -> (Verifier, http::HeaderMap, Vec<u8>) {
    let (configured, private) = keys_for(kind);
    let key = Secret::for_scheme(kind, configured).expect("secret");
    let mut body = if kind == SchemeKind::Twilio {
        let mut b = b"Body=".to_vec();
        b.resize(len, b'x');
        b
    } else {
        sized_body(len)
    };
    let url = kind.signs_url().then_some(PUBLIC_URL);
    let pairs = if let Some(h) = kind.token_header() {
        let name = http::HeaderName::from_static(h);
        vec![(name, kind.token_value(configured))]
    } else if let Some(r) = sign_with_private_key(kind, private, &body, NOW) {
        r.expect("signs")
    } else if let Some(r) = sign_body(kind, &key, &body, NOW, Some("msg_1")) {
        body = r.expect("signs");
        Vec::new()
    } else {
        sign_for_url(kind, None, &key, &body, NOW, (Some("msg_1"), url))
    };
    let mut headers = http::HeaderMap::new();
    for (n, v) in pairs {
        headers.insert(n, v.parse().expect("value"));
    }
    let verifier = Verifier {
        kind,
        hmac: None,
        secrets: vec![key],
        tolerance_secs: 300,
        public_url: url.map(str::to_owned),
    };
    (verifier, headers, body)
}

/// Every preset's check (all schemes but the generic `hmac` and `none`), at 1 KiB and
/// 25 KiB.
fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for kind in SchemeKind::ALL {
        if matches!(kind, SchemeKind::Hmac | SchemeKind::None) {
            continue;
        }
        for (len, label) in VERIFY_BODY_BYTES {
            let (verifier, headers, body) = signed(kind, len);
            verifier.verify(&headers, &body, NOW).expect("valid");
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_function(format!("{kind}/{label}"), |b| {
                b.iter(|| verifier.verify(&headers, &body, NOW).expect("valid"))
            });
        }
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

/// What ingest does first on every request: find the channel's config by name, here the
/// last of `MAX_CHANNELS`, and a name that is not configured.
fn channel_lookup(c: &mut Criterion) {
    use hookrelay::common::config::{Config, MAX_CHANNELS};
    let mut text = String::from("[server]\n");
    for i in 0..MAX_CHANNELS {
        text.push_str(&format!(
            "[[channel]]\nname = \"ch{i}\"\nscheme = \"none\"\n"
        ));
    }
    let config = Config::parse(&text, "bench.toml").expect("valid config");
    let last = format!("ch{}", MAX_CHANNELS - 1);
    let mut group = c.benchmark_group("config");
    group.bench_function("channel_last_of_max", |b| {
        b.iter(|| config.channel(std::hint::black_box(&last)).is_some())
    });
    group.bench_function("channel_unknown", |b| {
        b.iter(|| config.channel(std::hint::black_box("nope")).is_none())
    });
    group.finish();
}

criterion_group!(benches, verify, codec, append, channel_lookup);
criterion_main!(benches);
