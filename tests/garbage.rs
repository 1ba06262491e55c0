//! Bad input is harmless (guarantee 6): raw TCP garbage, broken request lines, absurd
//! or lying Content-Lengths, non-UTF-8 header values, huge headers and deep pipelines.
//! After each, the relay must still be alive, answer `/healthz`, and accept a valid
//! signed webhook at the next offset — nothing the garbage did was stored.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::io::Write;
use std::net::TcpStream;

use common::RelayProc;
use hooks::*;
use rand::{Rng, SeedableRng};

const SECRET: &str = "garbage-secret";

struct Fixture {
    relay: RelayProc,
    http: Http,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tmp");
        let relay = RelayProc::start(
            dir.path(),
            &format!("admin_token = \"{ADMIN}\"\nmax_body_bytes = 65536"),
            &format!("[[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"{SECRET}\"]\n"),
        );
        Fixture {
            relay,
            http: Http::new(),
            _dir: dir,
        }
    }

    fn head(&self) -> u64 {
        head(&self.http, &self.relay, "gh")
    }

    /// The relay survived: alive, healthy, and a valid webhook gets the next offset.
    fn assert_unharmed(&mut self, after: &str, head_before: u64) {
        assert!(
            self.relay.alive(),
            "relay died after {after}; stderr:\n{}",
            self.relay.stderr_text()
        );
        assert_healthy(&self.http, &self.relay);
        let body = format!("{{\"after\":{after:?}}}");
        let r = self.http.post(
            &self.relay.url("/hooks/gh"),
            &github(SECRET, body.as_bytes(), None),
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "after {after}: {}", r.text());
        assert_eq!(
            r.json["offset"],
            head_before + 1,
            "after {after}: garbage was stored or an offset was skipped"
        );
        let e = event_at(&self.http, &self.relay, "gh", head_before + 1).expect("stored");
        assert_eq!(body_of(&e), body.as_bytes());
    }

    /// The status of the relay's answer to raw bytes; garbage must never get a 2xx.
    fn assert_not_accepted(&self, what: &str, bytes: &[u8]) -> Option<u16> {
        let answer = raw_exchange(self.relay.addr, bytes);
        let status = first_status(&answer);
        assert!(
            !status.is_some_and(|s| (200..300).contains(&s)),
            "{what} was accepted: {:?}",
            String::from_utf8_lossy(&answer)
        );
        status
    }
}

#[test]
fn random_bytes() {
    let mut f = Fixture::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for i in 0..20 {
        let before = f.head();
        let len = rng.random_range(1..20_000);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 2 == 1 {
            // Half of them look like the start of a request before turning to noise.
            let mut v = b"POST /hooks/gh HTTP/1.1\r\nHost: x\r\n".to_vec();
            v.append(&mut bytes);
            bytes = v;
        }
        f.assert_not_accepted("random bytes", &bytes);
        f.assert_unharmed(&format!("random bytes #{i}"), before);
    }
}

#[test]
fn malformed_request_lines() {
    let mut f = Fixture::new();
    for line in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"POST /hooks/gh\r\n\r\n",
        b"POST /hooks/gh HTTP/9.9\r\nContent-Length: 2\r\n\r\n{}",
        b"POST  /hooks/gh  HTTP/1.1\r\n\r\n",
        b"\r\n\r\n\r\n",
        b"POST /hooks/\xff\xfe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"POST http://[::1 HTTP/1.1\r\n\r\n",
        b"POST /hooks/gh HTTP/1.1\r\nNo-Colon-Header\r\n\r\n",
        b"POST /hooks/gh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n0\r\n\r\n",
        b"POST /hooks/gh HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    ] {
        let before = f.head();
        f.assert_not_accepted("a malformed request", line);
        f.assert_unharmed(&String::from_utf8_lossy(line), before);
    }
}

#[test]
fn absurd_content_length() {
    let mut f = Fixture::new();
    for value in [
        "99999999999999999999",
        "18446744073709551615",
        "-1",
        "1e9",
        "0x10",
    ] {
        let before = f.head();
        let req =
            format!("POST /hooks/gh HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n{{}}");
        let status = f.assert_not_accepted("an absurd Content-Length", req.as_bytes());
        // Refused as a bad header (400/431) or as too large (413), never read as a body.
        assert!(
            matches!(status, Some(400 | 413 | 431) | None),
            "Content-Length {value}: {status:?}"
        );
        f.assert_unharmed(&format!("Content-Length: {value}"), before);
    }
}

#[test]
fn content_length_larger_than_the_body_then_close() {
    let mut f = Fixture::new();
    let body = b"{\"truncated\":true}";
    // A correct signature for the full body that never arrives.
    let full: Vec<u8> = body
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b' ', 500))
        .collect();
    let sig = github(SECRET, &full, Some("truncated-1"));
    for (i, sent) in [0usize, 1, body.len()].into_iter().enumerate() {
        let before = f.head();
        let mut s = TcpStream::connect(f.relay.addr).expect("connect");
        let head = format!(
            "POST /hooks/gh HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{}: {}\r\n{}: {}\r\n\r\n",
            full.len(),
            sig[0].0,
            sig[0].1,
            sig[1].0,
            sig[1].1
        );
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(&body[..sent]).expect("write");
        drop(s); // close with the body incomplete
        f.assert_unharmed(&format!("a truncated body #{i}"), before);
    }
    // The delivery id of the truncated request was never recorded: the full request is new.
    let before = f.head();
    let r = f.http.post(&f.relay.url("/hooks/gh"), &sig, &full);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json["offset"].as_u64(), r.json["duplicate"].as_bool()),
        (Some(before + 1), Some(false))
    );
}

#[test]
fn non_utf8_header_values() {
    let mut f = Fixture::new();
    let body = b"{\"binary\":\"headers\"}";
    let sig = github(SECRET, body, None);

    // A signature header that is not text is an invalid signature, not a crash.
    let before = f.head();
    let mut req = b"POST /hooks/gh HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Hub-Signature-256: sha256=\xff\xfe\x80\r\n".to_vec();
    req.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    req.extend_from_slice(body);
    let (r, _) = parse_response(&raw_exchange(f.relay.addr, &req)).expect("an answer");
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json()["error"], "invalid_signature");
    f.assert_unharmed("a binary signature header", before);

    // Binary values in other headers of a valid request: accepted, stored raw.
    let before = f.head();
    let mut req = format!(
        "POST /hooks/gh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}: {}\r\n",
        sig[0].0, sig[0].1
    )
    .into_bytes();
    req.extend_from_slice(b"X-Binary: caf\xe9 \xff\x01\r\n");
    req.extend_from_slice(b"X-GitHub-Delivery: \xc3\x28\r\n");
    req.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    req.extend_from_slice(body);
    let answer = raw_exchange(f.relay.addr, &req);
    let status = first_status(&answer);
    assert!(
        matches!(status, Some(200 | 400)),
        "binary header values: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let next = before + u64::from(status == Some(200));
    f.assert_unharmed("binary header values", next);

    // A binary admin token is refused, not a crash.
    let req = b"GET /v1/channels HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \xff\xfe\r\n\r\n";
    let status = first_status(&raw_exchange(f.relay.addr, req));
    assert!(
        matches!(status, Some(400 | 401)),
        "binary admin token: {status:?}"
    );
    let before = f.head();
    f.assert_unharmed("a binary admin token", before);
}

#[test]
fn header_over_64_kib() {
    let mut f = Fixture::new();
    for (name, size) in [("X-Huge", 70 * 1024), ("X-Huger", 1024 * 1024)] {
        let before = f.head();
        let body = b"{}";
        let sig = github(SECRET, body, None);
        let req = format!(
            "POST /hooks/gh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}: {}\r\n{name}: {}\r\nContent-Length: 2\r\n\r\n{{}}",
            sig[0].0,
            sig[0].1,
            "h".repeat(size)
        );
        let status = f.assert_not_accepted("a huge header", req.as_bytes());
        assert!(
            matches!(status, Some(400 | 413 | 431) | None),
            "{name}: {status:?}"
        );
        f.assert_unharmed(&format!("a {size}-byte header"), before);
    }
    // Thousands of small headers.
    let before = f.head();
    let many: String = (0..5000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("POST /hooks/gh HTTP/1.1\r\nHost: x\r\n{many}Content-Length: 0\r\n\r\n");
    f.assert_not_accepted("5000 headers", req.as_bytes());
    f.assert_unharmed("5000 headers", before);
}

#[test]
fn many_pipelined_requests() {
    let mut f = Fixture::new();
    const N: usize = 100;
    // Valid requests, all written at once on one connection, with a refused one (wrong
    // signature) in the middle: each gets its own answer, in order.
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for i in 0..N {
        let body = format!("{{\"pipelined\":{i}}}");
        let secret = if i == N / 2 { "wrong" } else { SECRET };
        let close = i == N - 1;
        bytes.extend(raw_request(
            "POST",
            &format!("/hooks/gh?i={i}"),
            &github(secret, body.as_bytes(), None),
            body.as_bytes(),
            close,
        ));
        expected.push((i != N / 2, body));
    }
    let mut s = TcpStream::connect(f.relay.addr).expect("connect");
    s.write_all(&bytes).expect("write the pipeline");
    let answers = read_responses(&mut s, N);
    assert_eq!(answers.len(), N, "every pipelined request gets an answer");
    let mut offset = 0;
    for (i, (r, (ok, body))) in answers.iter().zip(&expected).enumerate() {
        if *ok {
            offset += 1;
            assert_eq!(r.status, 200, "request {i}: {r:?}");
            assert_eq!(r.json()["offset"], offset, "request {i} out of order");
            let e = event_at(&f.http, &f.relay, "gh", offset).expect("stored");
            assert_eq!(body_of(&e), body.as_bytes());
            assert_eq!(e["query"], format!("i={i}"));
        } else {
            assert_eq!(r.status, 401, "request {i}: {r:?}");
            assert_eq!(r.json()["error"], "invalid_signature");
        }
    }
    f.assert_unharmed("a pipeline", offset);
    // Garbage after valid requests on one connection: the valid ones still count.
    let before = f.head();
    let body = b"{\"then\":\"garbage\"}";
    let mut bytes = raw_request(
        "POST",
        "/hooks/gh",
        &github(SECRET, body, None),
        body,
        false,
    );
    bytes.extend_from_slice(b"\x00\x01\x02 NOT HTTP\r\n\r\n");
    let answer = raw_exchange(f.relay.addr, &bytes);
    let (first, _) = parse_response(&answer).expect("an answer to the valid request");
    assert_eq!(first.status, 200, "{first:?}");
    f.assert_unharmed("garbage after a valid request", before + 1);
}
