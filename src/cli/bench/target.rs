//! What every phase shares: the relay under test ([`Target`]), how to sign for it, how
//! to reach its stream, the bench body, the in-process agent, and the phases' error.

use crate::common::protocol::Start;
use crate::common::shutdown::Shutdown;
use crate::common::verify::{HmacParams, SchemeKind, Secret};

/// Why a benchmark could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Starting the relay, a client or the local service failed.
    #[error("setup: {0}")]
    Setup(String),
    /// The flags do not make a benchmark (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A phase failed while running.
    #[error("{phase}: {message}")]
    Phase {
        /// The phase's name.
        phase: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Signs bench bodies the way the channel expects.
#[derive(Clone)]
pub struct Signer {
    kind: SchemeKind,
    hmac: Option<HmacParams>,
    secret: Secret,
}

impl Signer {
    /// A signer for `kind` (not hmac, which needs parameters bench does not take).
    pub fn new(kind: SchemeKind, secret: Secret) -> Signer {
        Signer {
            kind,
            hmac: None,
            secret,
        }
    }

    /// The headers that sign `body` now.
    pub fn sign(&self, body: &[u8], delivery_id: Option<&str>) -> Vec<(http::HeaderName, String)> {
        let now = (crate::common::time::now_unix_ms() / 1000) as i64;
        crate::common::verify::sign(
            self.kind,
            self.hmac.as_ref(),
            &self.secret,
            body,
            now,
            delivery_id,
        )
    }
}

/// The relay under test.
pub struct Target {
    /// http(s)://host:port: where webhooks are posted.
    pub base: String,
    /// http(s)://host:port: where agents and readers connect; another relay node on the
    /// same storage (`--stream-relay`), or `base`.
    pub stream_base: String,
    /// The channel the benchmark posts to and reads.
    pub channel: String,
    /// A consumer token of that channel.
    pub token: String,
    /// Signs bodies for the channel's scheme.
    pub signer: Signer,
}

impl Target {
    /// A running relay at `relay` (http:// or https://) whose `channel` is signed with
    /// `scheme` and `secret`, and read with `token`.
    pub fn remote(
        relay: &str,
        channel: &str,
        scheme: &str,
        secret: &str,
        token: &str,
    ) -> Result<Target, BenchError> {
        let kind = SchemeKind::parse(scheme)
            .ok_or_else(|| BenchError::Usage(format!("unknown scheme {scheme:?}")))?;
        if kind == SchemeKind::Hmac {
            return Err(BenchError::Usage(
                "bench signs github, stripe, slack, standard or none; use one of those".into(),
            ));
        }
        let secret = Secret::for_scheme(kind, secret)
            .map_err(|e| BenchError::Usage(format!("--secret: {e}")))?;
        let base = relay.trim_end_matches('/').to_string();
        Ok(Target {
            stream_base: base.clone(),
            base,
            channel: channel.to_string(),
            token: token.to_string(),
            signer: Signer::new(kind, secret),
        })
    }

    /// `POST` here to ingest.
    pub fn ingest_url(&self) -> String {
        format!("{}/hooks/{}", self.base, self.channel)
    }

    /// The agents' WebSocket.
    pub fn stream_url(&self) -> String {
        format!("{}/v1/stream", self.stream_base.replacen("http", "ws", 1))
    }
}

/// A WebSocket to the relay's stream.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The relay's stream, authenticated, after `Hello` (for the replay and idle phases).
pub(crate) async fn connect(target: &Target, agent: &str) -> Result<Ws, String> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = target
        .stream_url()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let auth = format!("Bearer {}", target.token)
        .parse()
        .map_err(|_| "the token is not a valid header value".to_string())?;
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, auth);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    let hello = crate::common::protocol::ClientMsg::Hello {
        versions: vec![crate::common::protocol::PROTOCOL_VERSION],
        agent: agent.to_string(),
    };
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        hello.encode().into(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// A relay's `Error` frame for a message, clipped (it comes from the other end).
pub fn relay_error(code: &str, message: &str) -> String {
    use crate::agent::clip::{clip, MAX_RELAY_CODE_BYTES, MAX_RELAY_MESSAGE_BYTES};
    format!(
        "{}: {}",
        clip(code, MAX_RELAY_CODE_BYTES),
        clip(message, MAX_RELAY_MESSAGE_BYTES)
    )
}

/// A bench body of `size` bytes: JSON padded with spaces.
pub fn body(size: usize) -> Vec<u8> {
    let mut b = br#"{"action":"bench","pad":""}"#.to_vec();
    b.resize(size.max(b.len()), b' ');
    b
}

/// The real agent code, started in process for a phase: one route from the bench
/// channel to `forward` in a fresh group `{group_prefix}-{random}`, so that no earlier
/// run's cursor applies. Trigger the returned signal, then await the task, to stop it.
pub(crate) fn spawn_agent(
    target: &Target,
    forward: String,
    group_prefix: &str,
    start: Start,
    max_in_flight: u32,
) -> (
    Shutdown,
    tokio::task::JoinHandle<Result<(), crate::agent::AgentError>>,
) {
    let plan = crate::agent::routes::Plan {
        relays: vec![target.stream_base.clone()],
        token: Some(target.token.clone()),
        ca_cert: None,
        client_cert: None,
        routes: vec![crate::agent::routes::Route {
            channel: target.channel.clone(),
            forward,
            group: format!("{group_prefix}-{:x}", rand::random::<u32>()),
            start,
            max_in_flight: max_in_flight.max(1),
            max_attempts: 3,
            filters: Vec::new(),
            max_rate: None,
            delivery: Default::default(),
        }],
        quiet: true,
        metrics_listen: None,
    };
    let stop = Shutdown::new();
    let agent = {
        let stop = stop.clone();
        tokio::spawn(async move { crate::agent::run(&plan, stop, false).await })
    };
    (stop, agent)
}
