//! What an agent subscribes to: one route from the command line, or several from an
//! `agent.toml`, all on one connection.
//!
//! ```toml
//! relay = "wss://relay.example.com"  # or a list to fail over: ["wss://a", "wss://b"]
//! token = "env:HOOKRELAY_TOKEN"      # or the token itself
//! ca_cert = "ca.pem"                 # optional, relative to this file
//! metrics_listen = "127.0.0.1:9465"  # optional: /metrics and /healthz (--metrics-listen)
//!
//! [[route]]
//! channel = "github"
//! forward = "http://127.0.0.1:3000/webhooks"
//! group = "default"                  # optional, like every key below
//! from = "earliest"                  # committed | earliest | latest | OFFSET
//! max_in_flight = 1
//! max_attempts = 10
//! max_rate = 50                      # events per second to this service (float ok)
//! filter = ["header:X-GitHub-Event=push"]   # all must match (see agent::filter)
//! timeout = 60                       # seconds to wait for the response head
//! forward_ca_cert = "local-ca.pem"   # trust this CA for an https:// service
//! headers = { "X-Internal-Token" = "env:INTERNAL_TOKEN" }  # added to each request
//! ```
//!
//! Several routes may name the same channel and group: they share one subscription
//! (whose `from` and `max_in_flight` are the first route's), and each event goes to
//! the first of them whose filters all match; an event none takes is acknowledged
//! without delivery. A route after one without filters could never get an event, so
//! it is refused.
//!
//! The file is validated like `config.toml`: a refusal names the file, the line and
//! the key, and exits with code 2 before anything is dialled. Command-line values act
//! as defaults for route keys the file leaves out, and `--relay`/`--token`/`--ca-cert`
//! override the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::agent::delivery::{check_timeout, DeliverySettings, ExtraHeader};
use crate::agent::filter::Filter;
use crate::agent::pacer::check_rate;
use crate::common::config::source::{read_file, Entry, FileError, Source};
use crate::common::config::valid_channel_name;
use crate::common::protocol::{Start, MAX_WINDOW};

/// One channel → local service route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The channel to receive.
    pub channel: String,
    /// The local service URL (checked when the forwarder is built).
    pub forward: String,
    /// The consumer group.
    pub group: String,
    /// Where a group without a committed cursor starts.
    pub start: Start,
    /// The subscription window: deliveries in flight at once.
    pub max_in_flight: u32,
    /// Attempts per event before it is dead-lettered.
    pub max_attempts: u32,
    /// The events this route takes (all must match; none: every event).
    pub filters: Vec<Filter>,
    /// Most deliveries per second to this service (`--max-rate`).
    pub max_rate: Option<f64>,
    /// Timeout, CA and extra headers of the requests.
    pub delivery: DeliverySettings,
}

/// Everything an agent run needs, before dialling.
#[derive(Clone, PartialEq)]
pub struct Plan {
    /// The relay URLs, never empty: the first is dialled first, the others are the
    /// ones to fail over to ([`crate::agent::failover`]).
    pub relays: Vec<String>,
    /// The consumer token, if any.
    pub token: Option<String>,
    /// A CA to trust for wss:// instead of the web PKI roots.
    pub ca_cert: Option<PathBuf>,
    /// A client certificate and key, for a relay that requires one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The channel → target routes.
    pub routes: Vec<Route>,
    /// No info line per delivery (`--quiet`).
    pub quiet: bool,
    /// Where to serve `/metrics` and `/healthz` (`--metrics-listen`), if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("relays", &redacted(&self.relays))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("routes", &self.routes)
            .finish()
    }
}

/// The values a route takes when the file does not say (from the command line).
#[derive(Debug, Clone)]
pub struct RouteDefaults {
    /// Consumer group (`--group`).
    pub group: String,
    /// Start of a new group (`--from`).
    pub from: String,
    /// Deliveries in flight (`--max-in-flight`).
    pub max_in_flight: u32,
    /// Attempts per event (`--max-attempts`).
    pub max_attempts: u32,
    /// Filters every route without its own gets (`--filter`).
    pub filters: Vec<Filter>,
    /// Deliveries per second at most (`--max-rate`).
    pub max_rate: Option<f64>,
    /// Timeout, CA file and extra headers (`--timeout`, `--forward-ca-cert`, `--header`).
    pub delivery: DeliverySettings,
}

/// Parses `committed|earliest|latest|OFFSET`.
pub fn parse_start(s: &str) -> Result<Start, String> {
    match s.trim() {
        "committed" => Ok(Start::Committed),
        "earliest" => Ok(Start::Earliest),
        "latest" => Ok(Start::Latest),
        n => match n.parse::<u64>() {
            Ok(0) => Err("offsets start at 1".into()),
            Ok(o) => Ok(Start::Offset(o)),
            Err(_) => Err(format!(
                "{n:?}: expected committed, earliest, latest or an offset"
            )),
        },
    }
}

/// `[A-Za-z0-9_-]{1,64}`, like channel names (the relay refuses others).
pub fn valid_group(g: &str) -> bool {
    valid_channel_name(g)
}

/// Checks a window size.
pub fn check_window(n: u32) -> Result<u32, String> {
    if (1..=MAX_WINDOW).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be between 1 and {MAX_WINDOW}"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    relay: Option<Spanned<RawRelays>>,
    token: Option<Spanned<String>>,
    ca_cert: Option<Spanned<String>>,
    client_cert: Option<Spanned<String>>,
    client_key: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    #[serde(default, rename = "route")]
    routes: Vec<Spanned<RawRoute>>,
}

/// `relay`: one URL, or a list of them (each with its own span, for errors).
enum RawRelays {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawRelays {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RelaysVisitor)
    }
}

/// Takes a string or an array of strings (an untagged enum would lose the spans).
struct RelaysVisitor;

impl<'de> serde::de::Visitor<'de> for RelaysVisitor {
    type Value = RawRelays;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a relay URL or a list of relay URLs")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawRelays, E> {
        Ok(RawRelays::One(s.to_string()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawRelays, A::Error> {
        let mut urls = Vec::new();
        while let Some(url) = seq.next_element::<Spanned<String>>()? {
            urls.push(url);
        }
        Ok(RawRelays::Many(urls))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    channel: Option<Spanned<String>>,
    forward: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
    from: Option<Spanned<toml::Value>>,
    max_in_flight: Option<Spanned<i64>>,
    max_attempts: Option<Spanned<i64>>,
    max_rate: Option<Spanned<toml::Value>>,
    filter: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<toml::Value>>,
    forward_ca_cert: Option<Spanned<String>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
}

/// An `agent.toml`, validated. `relay` may still be missing (the command line may
/// give it).
#[derive(Clone)]
pub struct AgentFile {
    /// `relay` (one URL or a list), empty if the file does not set it.
    pub relays: Vec<String>,
    /// `token`, if the file sets it (`env:` read).
    pub token: Option<String>,
    /// `ca_cert`, relative to the file.
    pub ca_cert: Option<PathBuf>,
    /// `client_cert` and `client_key`, relative to the file.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `metrics_listen`, if the file sets it.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The `[[route]]` tables, defaults applied.
    pub routes: Vec<Route>,
}

/// Reads and validates an agent file (at most
/// [`crate::common::config::MAX_CONFIG_FILE_BYTES`]).
pub fn load(path: &Path, defaults: &RouteDefaults) -> Result<AgentFile, FileError> {
    let text = read_file(path)?.text;
    let file = path.display().to_string();
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, &file, base, defaults, &|n| std::env::var(n).ok())
}

/// Validates agent file text; `file` names it in errors, relative paths are taken
/// from `base`.
pub fn parse(
    text: &str,
    file: &str,
    base: &Path,
    defaults: &RouteDefaults,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AgentFile, FileError> {
    let src = Source { text, file, env };
    // A token may be the value that did not parse: the error never echoes values.
    let raw: RawFile = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    let path_of = |v: &Spanned<String>| base.join(v.get_ref());
    let token = raw.token.as_ref().map(|t| token(&src, t)).transpose()?;
    let client_cert = client_cert(&src, &raw, path_of)?;
    let relays = raw
        .relay
        .as_ref()
        .map(|r| relays(&src, r))
        .transpose()?
        .unwrap_or_default();
    let metrics_listen = raw
        .metrics_listen
        .as_ref()
        .map(|m| {
            m.get_ref().parse().map_err(|_| {
                src.err(
                    m.span(),
                    "metrics_listen",
                    "expected an address like \"127.0.0.1:9465\"",
                )
            })
        })
        .transpose()?;
    let routes = routes(&src, &raw.routes, defaults, base)?;
    Ok(AgentFile {
        relays,
        token,
        ca_cert: raw.ca_cert.as_ref().map(path_of),
        client_cert,
        metrics_listen,
        routes,
    })
}

/// Relay URLs for logs and `Debug` (no userinfo, no query).
fn redacted(urls: &[String]) -> Vec<String> {
    urls.iter()
        .map(|u| crate::common::redact::redact(u))
        .collect()
}

/// `relay = "URL"` or `relay = ["URL", ...]`: every URL checked like `--relay`, and a
/// list must not be empty.
fn relays(src: &Source, raw: &Spanned<RawRelays>) -> Result<Vec<String>, FileError> {
    const BAD_URL: &str = "expected a ws://, wss://, http:// or https:// URL";
    match raw.get_ref() {
        RawRelays::One(url) => {
            super::dial::relay_url(url).map_err(|_| src.err(raw.span(), "relay", BAD_URL))?;
            Ok(vec![url.clone()])
        }
        RawRelays::Many(list) if list.is_empty() => {
            Err(src.err(raw.span(), "relay", "an empty list: give at least one URL"))
        }
        RawRelays::Many(list) => list
            .iter()
            .enumerate()
            .map(|(i, url)| {
                super::dial::relay_url(url.get_ref())
                    .map(|_| url.get_ref().clone())
                    .map_err(|_| src.err(url.span(), &format!("relay[{i}]"), BAD_URL))
            })
            .collect(),
    }
}

/// The token itself, or `env:NAME`; never empty.
fn token(src: &Source, raw: &Spanned<String>) -> Result<String, FileError> {
    if raw.get_ref().is_empty() {
        return Err(src.err(raw.span(), "token", "cannot be empty"));
    }
    src.resolve(raw, "token")
}

/// `client_cert` and `client_key` come together or not at all.
fn client_cert(
    src: &Source,
    raw: &RawFile,
    path_of: impl Fn(&Spanned<String>) -> PathBuf,
) -> Result<Option<(PathBuf, PathBuf)>, FileError> {
    match (&raw.client_cert, &raw.client_key) {
        (Some(c), Some(k)) => Ok(Some((path_of(c), path_of(k)))),
        (None, None) => Ok(None),
        (Some(c), None) => Err(src.err(c.span(), "client_key", "client_cert needs client_key")),
        (None, Some(k)) => Err(src.err(k.span(), "client_cert", "client_key needs client_cert")),
    }
}

/// Every `[[route]]`: at least one, and none that an earlier route of its channel
/// and group (one without filters) leaves nothing to.
fn routes(
    src: &Source,
    raw: &[Spanned<RawRoute>],
    defaults: &RouteDefaults,
    base: &Path,
) -> Result<Vec<Route>, FileError> {
    if raw.is_empty() {
        return Err(FileError::whole_file(
            src.file,
            "route",
            "no [[route]]: add at least one with channel and forward",
        ));
    }
    let mut routes: Vec<Route> = Vec::with_capacity(raw.len());
    for (index, r) in raw.iter().enumerate() {
        let at = Entry {
            src,
            array: "route",
            index,
            span: r.span(),
        };
        let route = route(&at, r.get_ref(), defaults, base)?;
        if routes
            .iter()
            .any(|o| o.channel == route.channel && o.group == route.group && o.filters.is_empty())
        {
            return Err(at.err_here(
                "channel",
                format!(
                    "channel {:?} with group {:?} is routed twice, and the earlier route has no filter: this one would never get an event",
                    route.channel, route.group
                ),
            ));
        }
        routes.push(route);
    }
    Ok(routes)
}

/// One `[[route]]`; keys it leaves out come from `defaults` (the command line).
fn route(
    at: &Entry,
    r: &RawRoute,
    defaults: &RouteDefaults,
    base: &Path,
) -> Result<Route, FileError> {
    let channel = r
        .channel
        .as_ref()
        .ok_or_else(|| at.err_here("channel", "missing"))?;
    if !valid_channel_name(channel.get_ref()) {
        return Err(at.err(channel.span(), "channel", "must match [A-Za-z0-9_-]{1,64}"));
    }
    let forward = forward(at, r)?;
    let group = match &r.group {
        Some(g) if !valid_group(g.get_ref()) => {
            return Err(at.err(g.span(), "group", "must match [A-Za-z0-9_-]{1,64}"))
        }
        Some(g) => g.get_ref().clone(),
        None => defaults.group.clone(),
    };
    let start = start(at, r, defaults)?;
    let max_in_flight = match &r.max_in_flight {
        Some(n) => u32::try_from(*n.get_ref())
            .map_err(|_| format!("must be between 1 and {MAX_WINDOW}"))
            .and_then(check_window)
            .map_err(|m| at.err(n.span(), "max_in_flight", m))?,
        None => defaults.max_in_flight,
    };
    let max_attempts = match &r.max_attempts {
        Some(n) => u32::try_from(*n.get_ref())
            .ok()
            .filter(|&v| v >= 1)
            .ok_or_else(|| at.err(n.span(), "max_attempts", "must be a positive integer"))?,
        None => defaults.max_attempts,
    };
    Ok(Route {
        channel: channel.get_ref().clone(),
        forward,
        group,
        start,
        max_in_flight,
        max_attempts,
        filters: filters(at, r, defaults)?,
        max_rate: max_rate(at, r, defaults)?,
        delivery: delivery(at, r, defaults, base)?,
    })
}

/// A TOML integer or float as f64.
fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(n) => Some(*n as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// `filter = ["EXPR", ...]`; else `--filter`.
fn filters(at: &Entry, r: &RawRoute, defaults: &RouteDefaults) -> Result<Vec<Filter>, FileError> {
    match &r.filter {
        Some(list) => list
            .get_ref()
            .iter()
            .map(|e| Filter::parse(e).map_err(|m| at.err(list.span(), "filter", m)))
            .collect(),
        None => Ok(defaults.filters.clone()),
    }
}

/// `max_rate = N` (events per second); else `--max-rate`.
fn max_rate(at: &Entry, r: &RawRoute, defaults: &RouteDefaults) -> Result<Option<f64>, FileError> {
    match &r.max_rate {
        Some(v) => number(v.get_ref())
            .ok_or_else(|| "must be a number".to_string())
            .and_then(check_rate)
            .map(Some)
            .map_err(|m| at.err(v.span(), "max_rate", m)),
        None => Ok(defaults.max_rate),
    }
}

/// `timeout`, `forward_ca_cert` (relative to the file) and `headers` (values may be
/// `env:NAME`); each else from the command line.
fn delivery(
    at: &Entry,
    r: &RawRoute,
    defaults: &RouteDefaults,
    base: &Path,
) -> Result<DeliverySettings, FileError> {
    let mut d = defaults.delivery.clone();
    if let Some(t) = &r.timeout {
        d.timeout = number(t.get_ref())
            .ok_or_else(|| "must be a number of seconds".to_string())
            .and_then(check_timeout)
            .map_err(|m| at.err(t.span(), "timeout", m))?;
    }
    if let Some(ca) = &r.forward_ca_cert {
        d.ca_cert = Some(base.join(ca.get_ref()));
    }
    if let Some(headers) = &r.headers {
        d.headers = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let value = at.src.resolve(value, "headers")?;
            let h = ExtraHeader::new(name, &value).map_err(|m| at.err_here("headers", m))?;
            d.headers.push(h);
        }
    }
    Ok(d)
}

/// The local service: an http(s) URL with a host.
fn forward(at: &Entry, r: &RawRoute) -> Result<String, FileError> {
    let forward = r
        .forward
        .as_ref()
        .ok_or_else(|| at.err_here("forward", "missing"))?;
    let scheme_ok = reqwest::Url::parse(forward.get_ref())
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false);
    if !scheme_ok {
        return Err(at.err(
            forward.span(),
            "forward",
            "expected an http:// or https:// URL",
        ));
    }
    Ok(forward.get_ref().clone())
}

/// `from`: a word or an offset, as a string or an integer; else `--from`.
fn start(at: &Entry, r: &RawRoute, defaults: &RouteDefaults) -> Result<Start, FileError> {
    match &r.from {
        Some(f) => {
            let text = match f.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                _ => String::from("?"),
            };
            parse_start(&text).map_err(|m| at.err(f.span(), "from", m))
        }
        None => parse_start(&defaults.from)
            .map_err(|m| at.err_here("from", format!("(from --from) {m}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> RouteDefaults {
        RouteDefaults {
            group: "default".into(),
            from: "earliest".into(),
            max_in_flight: 1,
            max_attempts: 10,
            filters: Vec::new(),
            max_rate: None,
            delivery: DeliverySettings::default(),
        }
    }

    fn parse_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<AgentFile, FileError> {
        parse(text, "agent.toml", Path::new("/etc/hr"), &defaults(), env)
    }

    fn parse_text(text: &str) -> Result<AgentFile, FileError> {
        parse_env(text, &|_| None)
    }

    #[test]
    fn several_routes_with_defaults() {
        let f = parse_text(
            "relay = \"ws://127.0.0.1:1\"\ntoken = \"t\"\nca_cert = \"ca.pem\"\n\n\
             [[route]]\nchannel = \"a\"\nforward = \"http://127.0.0.1:2/a\"\n\n\
             [[route]]\nchannel = \"b\"\nforward = \"http://127.0.0.1:3\"\ngroup = \"g2\"\nfrom = 5\nmax_in_flight = 8\nmax_attempts = 3\n",
        )
        .expect("valid");
        assert_eq!(f.relays, vec!["ws://127.0.0.1:1".to_string()]);
        assert_eq!(f.token.as_deref(), Some("t"));
        assert_eq!(f.ca_cert, Some(PathBuf::from("/etc/hr/ca.pem")));
        assert_eq!(
            f.routes,
            vec![
                Route {
                    channel: "a".into(),
                    forward: "http://127.0.0.1:2/a".into(),
                    group: "default".into(),
                    start: Start::Earliest,
                    max_in_flight: 1,
                    max_attempts: 10,
                    filters: Vec::new(),
                    max_rate: None,
                    delivery: DeliverySettings::default(),
                },
                Route {
                    channel: "b".into(),
                    forward: "http://127.0.0.1:3".into(),
                    group: "g2".into(),
                    start: Start::Offset(5),
                    max_in_flight: 8,
                    max_attempts: 3,
                    filters: Vec::new(),
                    max_rate: None,
                    delivery: DeliverySettings::default(),
                },
            ]
        );
    }

    #[test]
    fn env_token_is_resolved_and_never_echoed() {
        let text =
            "token = \"env:AGENT_TOK\"\n[[route]]\nchannel = \"a\"\nforward = \"http://h\"\n";
        let f = parse_env(text, &|n| (n == "AGENT_TOK").then(|| "s3cret".into())).expect("ok");
        assert_eq!(f.token.as_deref(), Some("s3cret"));
        let e = parse_env(text, &|_| None).err().expect("refused");
        assert_eq!((e.line, e.key.as_str()), (Some(1), "token"));
        assert!(e.message.contains("AGENT_TOK"));
    }

    #[test]
    fn relay_may_be_one_url_or_a_list() {
        let route = "[[route]]\nchannel = \"a\"\nforward = \"http://h\"\n";
        let f = parse_text(&format!(
            "relay = [\n  \"ws://a:1\",\n  \"https://b\",\n]\n{route}"
        ))
        .expect("a list");
        assert_eq!(f.relays, vec!["ws://a:1".to_string(), "https://b".into()]);
        let f = parse_text(&format!("relay = \"ws://a:1\"\n{route}")).expect("one");
        assert_eq!(f.relays, vec!["ws://a:1".to_string()]);
        assert!(parse_text(route).expect("none").relays.is_empty());
        for (text, line, key) in [
            (
                "relay = [\n  \"ws://a\",\n  \"ftp://b?k=s3cret\",\n]\n",
                3,
                "relay[1]",
            ),
            ("relay = []\n", 1, "relay"),
            ("\nrelay = 5\n", 2, "relay"),
            ("relay = [\"ws://a\", 7]\n", 1, "relay"),
        ] {
            let e = parse_text(&format!("{text}{route}")).err().expect(text);
            assert_eq!((e.line, e.key.as_str()), (Some(line), key), "{text}: {e}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn errors_name_line_and_key() {
        for (text, line, key) in [
            ("[[route]]\nchannel = \"a b\"\nforward = \"http://h\"\n", Some(2), "route[0].channel"),
            ("[[route]]\nchannel = \"a\"\nforward = \"ftp://h\"\n", Some(3), "route[0].forward"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\nfrom = \"soon\"\n", Some(4), "route[0].from"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\nfrom = 0\n", Some(4), "route[0].from"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\nmax_in_flight = 0\n", Some(4), "route[0].max_in_flight"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\nmax_in_flight = 5000\n", Some(4), "route[0].max_in_flight"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\nmax_attempts = -1\n", Some(4), "route[0].max_attempts"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\ngroup = \"\"\n", Some(4), "route[0].group"),
            ("[[route]]\nforward = \"http://h\"\n", Some(1), "route[0].channel"),
            ("relay = \"ftp://x\"\n[[route]]\nchannel = \"a\"\nforward = \"http://h\"\n", Some(1), "relay"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\n[[route]]\nchannel = \"a\"\nforward = \"http://i\"\n", Some(4), "route[1].channel"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\nfoo = 1\n", Some(4), "route[0].foo"),
            ("relay = \"ws://h\"\n", None, "route"),
        ] {
            let e = parse_text(text).err().unwrap_or_else(|| panic!("accepted: {text}"));
            assert_eq!((e.line, e.key.as_str()), (line, key), "{text}: {e}");
            assert!(e.to_string().starts_with("agent.toml"), "{e}");
        }
    }

    #[test]
    fn routes_take_filters_rates_and_delivery_settings() {
        let text = "[[route]]\nchannel = \"a\"\nforward = \"https://h/a\"\n\
                    filter = [\"header:X-GitHub-Event=push\", \"json:/ref^=refs/tags/\"]\n\
                    max_rate = 2.5\ntimeout = 5\nforward_ca_cert = \"local.pem\"\n\
                    headers = { \"X-Token\" = \"env:TOK\" }\n\n\
                    [[route]]\nchannel = \"a\"\nforward = \"http://h/b\"\n";
        let f = parse_env(text, &|n| (n == "TOK").then(|| "t0k".into())).expect("valid");
        let (a, b) = (&f.routes[0], &f.routes[1]);
        assert_eq!(a.filters.len(), 2);
        assert_eq!(a.max_rate, Some(2.5));
        assert_eq!(a.delivery.timeout, std::time::Duration::from_secs(5));
        assert_eq!(a.delivery.ca_cert, Some(PathBuf::from("/etc/hr/local.pem")));
        assert_eq!(a.delivery.headers[0].value.as_bytes(), b"t0k");
        // The second route of the channel takes what the first leaves, with defaults.
        assert!(b.filters.is_empty() && b.max_rate.is_none());
        assert_eq!(b.delivery, DeliverySettings::default());
        for (text, key) in [
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\nfilter = [\"nope\"]\n", "route[0].filter"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\nmax_rate = 0\n", "route[0].max_rate"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\ntimeout = \"x\"\n", "route[0].timeout"),
            ("[[route]]\nchannel = \"a\"\nforward = \"http://h\"\nheaders = { \"bad name\" = \"v\" }\n", "route[0].headers"),
        ] {
            let e = parse_text(text).err().unwrap_or_else(|| panic!("accepted: {text}"));
            assert_eq!(e.key, key, "{e}");
        }
    }

    #[test]
    fn starts_parse() {
        assert_eq!(parse_start("committed"), Ok(Start::Committed));
        assert_eq!(parse_start("latest"), Ok(Start::Latest));
        assert_eq!(parse_start("42"), Ok(Start::Offset(42)));
        assert!(parse_start("0").is_err());
        assert!(parse_start("-3").is_err());
        assert!(parse_start("").is_err());
    }
}
