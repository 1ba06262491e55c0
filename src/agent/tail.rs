//! `hookrelay tail`: print a channel's events as JSON lines.
//!
//! A group-less `Read` subscription (no cursor moves); each event is printed as one
//! line of [`crate::common::event::Record::to_json`] — the admin API's shape — and acknowledged
//! as soon as it is written, which returns window credit. stdout is written with
//! explicit error handling, so a closed pipe (`| head -1`) ends the run cleanly.

use super::args::TailArgs;
use super::error::AgentError;
use super::failover::Relays;
use super::plan::{endpoint, signal_shutdown};
use super::routes;
use super::session::Ctx;
use super::sink::Handler;
use super::sub::{Sub, SubKind};
use super::supervisor::{self, Finish};

/// Events the relay may send ahead of the printer.
const TAIL_WINDOW: u32 = 1024;
/// Consecutive failed connection attempts before a tail without `--follow` gives up
/// (`--follow` keeps trying, like `tail -F`).
const TAIL_MAX_FAILURES: u32 = 5;

pub async fn run(args: TailArgs) -> Result<(), AgentError> {
    let start =
        routes::parse_start(&args.from).map_err(|m| AgentError::Usage(format!("--from {m}")))?;
    if !crate::common::config::valid_channel_name(&args.channel) {
        return Err(AgentError::Usage(format!(
            "--channel {:?}: must match [A-Za-z0-9_-]{{1,64}}",
            args.channel
        )));
    }
    if args.limit == Some(0) {
        return Ok(());
    }
    let client_cert = args.client_cert.clone().zip(args.client_key.clone());
    let endpoint = endpoint(
        &args.relay,
        args.token.as_deref(),
        args.ca_cert.as_deref(),
        &client_cert,
    )?;
    let window = args
        .limit
        .map(|l| u32::try_from(l).unwrap_or(TAIL_WINDOW).min(TAIL_WINDOW))
        .unwrap_or(TAIL_WINDOW);
    let mut subs = vec![Sub {
        channel: args.channel.clone(),
        kind: SubKind::Read {
            to: None,
            follow: args.follow,
        },
        start,
        window,
        concurrency: 1,
        handler: Handler::Print,
        limit: args.limit,
        delivered: 0,
        failed: 0,
        finished: false,
        until_ms: None,
        progress: None,
    }];
    let ctx = Ctx {
        shutdown: signal_shutdown(),
        announce: false,
        relay: endpoint.display_url(),
    };
    let max_failures = (!args.follow).then_some(TAIL_MAX_FAILURES);
    match supervisor::supervise(&mut Relays::one(endpoint), &mut subs, &ctx, max_failures)
        .await
        .map_err(AgentError::from)?
    {
        Finish::Done | Finish::Shutdown | Finish::OutputClosed => Ok(()),
    }
}
