//! Runs the providers' own SDKs (`sign.py`, `sign.mjs` beside this file) against a real
//! relay: the SDK signs a request (or verifies one that `hookrelay send` signed), the
//! relay must accept it, and must refuse it tampered, under another key, stale and
//! without its signature, with the spec's 401 codes.
//!
//! A missing interpreter or package fails the test with a message that names it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use hookrelay::common::verify::{sign, sign_body, sign_with_private_key, SchemeKind, Secret};
use serde_json::{json, Value};

use crate::common::{bin, RelayProc, Target};
use crate::hooks::{now_secs, Http, Resp};

/// The URL the provider is told to post to: what URL-bound schemes sign.
pub const PUBLIC_URL: &str = "https://relay.example.com/hooks/sdk?source=test";
/// The channel's configured `public_url`: the relay appends each request's suffix and
/// query (`?source=test` here) to it, giving [`PUBLIC_URL`] back.
pub const CHANNEL_URL: &str = "https://relay.example.com/hooks/sdk";
/// How far in the past a stale request is signed: beyond every tolerance.
const STALE_SECS: i64 = 3600;

/// Which SDK speaks for the provider, and whether it signs or only verifies.
#[derive(Clone, Copy, Debug)]
pub enum Sdk {
    /// `sign.py sign <provider>`: the Python SDK makes the signature.
    PySign(&'static str),
    /// `sign.mjs sign <provider>`: the npm SDK makes the signature.
    NodeSign(&'static str),
    /// `hookrelay send` signs; `sign.py verify <provider>` must accept it.
    PyVerify(&'static str),
    /// `hookrelay send` signs; `sign.mjs verify <provider>` must accept it.
    NodeVerify(&'static str),
}

/// Where the signature travels.
#[derive(Clone, Copy, Debug)]
pub enum Sig {
    /// In this header (lower-case); tampering changes the body.
    Header(&'static str),
    /// In this header, which does not cover the body (monday.com's JWT): tampering
    /// changes the header itself.
    HeaderOnly(&'static str),
    /// Inside the JSON body's `signature` object (Mailgun); tampering changes the token.
    InBody,
}

/// One provider's test.
pub struct Case {
    /// The channel's scheme (a preset name or alias).
    pub scheme: &'static str,
    pub sdk: Sdk,
    pub sig: Sig,
    /// What the channel configures: the secret, or the provider's public key.
    pub secret: &'static str,
    /// What the SDK (or `send`) signs with: the secret, or the private key.
    pub signing_key: &'static str,
    /// Another channel's key: a signature under `signing_key` must fail there.
    pub other_secret: &'static str,
    /// The body, given the current unix time.
    pub body: fn(i64) -> String,
    /// Extra lines of both channels' config tables.
    pub channel_extra: &'static str,
}

/// A JSON event body.
pub fn json_body(_now: i64) -> String {
    r#"{"id":"evt_sdk_1","type":"test.event","data":{"amount":4200,"note":"caf\u00e9 + tea"}}"#
        .into()
}

/// A form-encoded body, as Twilio posts.
pub fn form_body(_now: i64) -> String {
    "AccountSid=AC0123456789&Body=Hello+world%21&From=%2B15551234567&To=%2B15557654321".into()
}

/// A signed request: its headers and body.
#[derive(Clone, Debug)]
struct Signed {
    headers: Vec<(String, String)>,
    body: String,
}

impl Signed {
    /// What hookrelay's own signer produced.
    fn from_lib(headers: Vec<(http::HeaderName, String)>, body: String) -> Signed {
        let headers = headers
            .into_iter()
            .map(|(n, v)| (n.as_str().to_owned(), v))
            .collect();
        Signed { headers, body }
    }

    fn without_header(&self, name: &str) -> Signed {
        let headers = self
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .cloned()
            .collect();
        Signed {
            headers,
            body: self.body.clone(),
        }
    }

    fn header_map(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), Value::String(v.clone())))
            .collect();
        Value::Object(map)
    }
}

impl Case {
    fn kind(&self) -> SchemeKind {
        SchemeKind::parse(self.scheme).expect("known scheme")
    }

    /// Runs every check: valid, tampered, wrong key, stale (where signed), missing.
    pub fn run(&self) {
        let dir = tempfile::tempdir().expect("tmp");
        let relay = RelayProc::start(dir.path(), "", &self.channels());
        let http = Http::new();
        let now = now_secs();
        let valid = self.valid(now);
        let post = |channel: &str, s: &Signed| -> Resp {
            http.post(
                &relay.url(&format!("/hooks/{channel}?source=test")),
                &s.headers,
                s.body.as_bytes(),
            )
        };
        let ok = post("sdk", &valid);
        assert_eq!(
            ok.status,
            200,
            "{}: valid request refused: {}",
            self.scheme,
            ok.text()
        );
        assert_eq!(ok.json["offset"], 1, "{}: {}", self.scheme, ok.text());
        post("sdk", &self.tampered(&valid)).assert_error(401, "invalid_signature");
        post("other", &valid).assert_error(401, "invalid_signature");
        post("sdk", &self.missing(&valid)).assert_error(401, "missing_signature");
        if self.kind().has_timestamp() {
            let stale = self.stale(now - STALE_SECS);
            post("sdk", &stale).assert_error(401, "timestamp_out_of_tolerance");
        }
    }

    /// Channel `sdk` with the case's key, channel `other` with another one.
    fn channels(&self) -> String {
        let url = if self.kind().signs_url() {
            format!("public_url = \"{CHANNEL_URL}\"\n")
        } else {
            String::new()
        };
        [("sdk", self.secret), ("other", self.other_secret)]
            .iter()
            .map(|(name, key)| {
                format!(
                    "[[channel]]\nname = \"{name}\"\nscheme = \"{}\"\nsecrets = [\"{key}\"]\n{url}{}\n",
                    self.scheme, self.channel_extra
                )
            })
            .collect()
    }

    /// A request the provider's SDK signed, or `send` signed and the SDK verified.
    fn valid(&self, now: i64) -> Signed {
        let body = (self.body)(now);
        match self.sdk {
            Sdk::PySign(p) => self.sdk_signed(Script::Python, p, body, now),
            Sdk::NodeSign(p) => self.sdk_signed(Script::Node, p, body, now),
            Sdk::PyVerify(p) => self.send_verified(Script::Python, p, &body),
            Sdk::NodeVerify(p) => self.send_verified(Script::Node, p, &body),
        }
    }

    fn sdk_signed(&self, script: Script, provider: &str, body: String, ts: i64) -> Signed {
        let request = json!({
            "secret": self.signing_key, "body": body, "timestamp": ts,
            "url": PUBLIC_URL, "id": format!("msg_sdk_{ts}"),
        });
        let out = script.run("sign", provider, &request);
        let headers: Vec<(String, String)> = out["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .map(|p| {
                (
                    p[0].as_str().expect("name").into(),
                    p[1].as_str().expect("value").into(),
                )
            })
            .collect();
        let signed = Signed { headers, body };
        if let Sig::Header(h) | Sig::HeaderOnly(h) = self.sig {
            // The preset reads the header the SDK writes.
            assert!(
                signed
                    .headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(h)),
                "{provider}: the SDK sends no `{h}` header: {:?}",
                signed.headers
            );
        }
        signed
    }

    /// What `hookrelay send` posts (caught by a recording target), checked by the SDK;
    /// the SDK must also refuse it tampered, so it really checks.
    fn send_verified(&self, script: Script, provider: &str, body: &str) -> Signed {
        let target = Target::ok();
        let out = Command::new(bin())
            .args([
                "send",
                &format!("{}/hooks/sdk", target.url()),
                "--scheme",
                self.scheme,
            ])
            .args([
                "--secret",
                self.signing_key,
                "--data",
                body,
                "--public-url",
                PUBLIC_URL,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run hookrelay send");
        assert!(
            out.status.success(),
            "send: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = target.wait_for(1).remove(0);
        let headers = got
            .headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "host" | "content-length"))
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let signed = Signed {
            headers,
            body: String::from_utf8(got.body).expect("utf-8 body"),
        };
        let verdict = |s: &Signed| {
            let req = json!({"secret": self.secret, "body": s.body, "headers": s.header_map(), "url": PUBLIC_URL});
            script.run("verify", provider, &req)["valid"] == true
        };
        assert!(
            verdict(&signed),
            "{provider}'s SDK refuses what `hookrelay send` signed: {signed:?}"
        );
        assert!(
            !verdict(&self.tampered(&signed)),
            "{provider}'s SDK accepts a tampered request"
        );
        signed
    }

    /// The same request with one signed byte changed.
    fn tampered(&self, s: &Signed) -> Signed {
        let mut t = s.clone();
        match self.sig {
            Sig::Header(_) => {
                t.body = t
                    .body
                    .replacen("4200", "4201", 1)
                    .replacen("Hello", "Jello", 1)
            }
            Sig::HeaderOnly(h) => {
                let (_, v) = t
                    .headers
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(h))
                    .expect("header");
                let mid = v.len() / 2;
                let c = if v.as_bytes()[mid] == b'A' { "B" } else { "A" };
                v.replace_range(mid..=mid, c);
            }
            Sig::InBody => {
                let mut v: Value = serde_json::from_str(&t.body).expect("json body");
                let token = v["signature"]["token"].as_str().expect("token").to_owned();
                v["signature"]["token"] = Value::String(format!("{token}x"));
                t.body = v.to_string();
            }
        }
        assert_ne!(
            (&t.headers, &t.body),
            (&s.headers, &s.body),
            "tampering changed nothing"
        );
        t
    }

    /// The same request without its signature.
    fn missing(&self, s: &Signed) -> Signed {
        match self.sig {
            Sig::Header(h) | Sig::HeaderOnly(h) => s.without_header(h),
            Sig::InBody => {
                let mut v: Value = serde_json::from_str(&s.body).expect("json body");
                v.as_object_mut().expect("object").remove("signature");
                Signed {
                    headers: s.headers.clone(),
                    body: v.to_string(),
                }
            }
        }
    }

    /// A request signed at `ts`: by the SDK where it signs, else by hookrelay's own
    /// signer (`send` has no clock to turn back).
    fn stale(&self, ts: i64) -> Signed {
        let body = (self.body)(ts);
        match self.sdk {
            Sdk::PySign(p) => return self.sdk_signed(Script::Python, p, body, ts),
            Sdk::NodeSign(p) => return self.sdk_signed(Script::Node, p, body, ts),
            Sdk::PyVerify(_) | Sdk::NodeVerify(_) => {}
        }
        let kind = self.kind();
        if let Some(r) = sign_with_private_key(kind, self.signing_key, body.as_bytes(), ts) {
            return Signed::from_lib(r.expect("signs"), body);
        }
        let key = secret(kind, self.signing_key);
        if let Some(r) = sign_body(kind, &key, body.as_bytes(), ts, None) {
            let body = String::from_utf8(r.expect("signs")).expect("utf-8");
            return Signed {
                headers: vec![],
                body,
            };
        }
        Signed::from_lib(sign(kind, None, &key, body.as_bytes(), ts, None), body)
    }
}
fn secret(kind: SchemeKind, raw: &str) -> Secret {
    Secret::for_scheme(kind, raw).expect("secret")
}

/// The interpreter that runs one of the SDK scripts.
#[derive(Clone, Copy)]
enum Script {
    Python,
    Node,
}

/// Exit code of the scripts when a package is missing.
const MISSING_PACKAGE_EXIT: i32 = 3;

impl Script {
    fn command(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Script::Python => (
                "python3",
                "sign.py",
                "install python3 (apt-get install python3)",
            ),
            Script::Node => (
                "node",
                "sign.mjs",
                "install node and npm (apt-get install nodejs npm)",
            ),
        }
    }

    /// Runs `<script> <mode> <provider>` with `request` on stdin; its JSON answer.
    fn run(self, mode: &str, provider: &str, request: &Value) -> Value {
        let (interpreter, file, hint) = self.command();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sdk")
            .join(file);
        let mut child = Command::new(interpreter)
            .arg(&script)
            .args([mode, provider])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("`{interpreter}` is missing ({e}): {hint}"));
        let input = serde_json::to_vec(request).expect("json");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&input)
            .expect("write request");
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{file} {mode} {provider}: bad output ({e}): {stderr}")),
            Some(MISSING_PACKAGE_EXIT) => panic!("{}", stderr.trim()),
            _ => panic!("{file} {mode} {provider} failed ({}): {stderr}", out.status),
        }
    }
}
