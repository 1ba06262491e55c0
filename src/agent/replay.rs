//! `hookrelay replay`: deliver a stored range to a target, then exit.
//!
//! A group-less `Read` subscription, so no consumer group's cursor moves and live
//! agents on the channel are unaffected (they neither lose nor re-receive anything).
//! Events are forwarded one at a time, in offset order, with the agent's forwarding
//! and retry rules; a failed event is reported and the replay goes on, and the exit
//! code (1) says at the end that something failed and how much.
//!
//! By time: `--since` becomes `Start::Time`, which the relay resolves with a binary
//! search over received-at (no scan of the channel). `--until` is applied here: the
//! replay ends before the first event received after it (received-at never decreases
//! along the offsets, so nothing after that event can qualify). On a terminal, a
//! progress line shows events done, rate and ETA.

use std::sync::Arc;

use super::session::{Ctx, Handler, Sub, SubKind};
use super::supervisor::{self, Finish};
use super::{endpoint, run_failure, signal_shutdown, ReplayArgs};
use crate::admin_groups::parse_time_ms;
use crate::cli::Failure;
use crate::progress::Progress;
use crate::protocol::Start;

/// Events the relay may send ahead while one is being delivered; small, because each
/// holds a whole body in memory.
const REPLAY_WINDOW: u32 = 4;
/// Consecutive failed connection attempts before a replay gives up.
const REPLAY_MAX_FAILURES: u32 = 5;

pub async fn run(args: ReplayArgs) -> Result<(), Failure> {
    let time = |flag: &str, t: &str| {
        parse_time_ms(t).map_err(|e| Failure::usage(anyhow::anyhow!("{flag} {t:?}: {e}")))
    };
    let start = match (args.from, &args.since) {
        (Some(0), None) => {
            return Err(Failure::usage(anyhow::anyhow!(
                "--from: offsets start at 1"
            )))
        }
        (Some(from), None) => {
            if let Some(to) = args.to.filter(|&to| to < from) {
                return Err(Failure::usage(anyhow::anyhow!(
                    "--to {to} is before --from {from}"
                )));
            }
            Start::Offset(from)
        }
        (None, Some(since)) => Start::Time(time("--since", since)?),
        _ => {
            return Err(Failure::usage(anyhow::anyhow!(
                "give exactly one of --from OFFSET and --since TIME"
            )))
        }
    };
    let until_ms = match &args.until {
        Some(u) => Some(time("--until", u)?),
        None => None,
    };
    if let (Start::Time(since), Some(until)) = (start, until_ms) {
        if until < since {
            return Err(Failure::usage(anyhow::anyhow!("--until is before --since")));
        }
    }
    if !crate::config::valid_channel_name(&args.channel) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--channel {:?}: must match [A-Za-z0-9_-]{{1,64}}",
            args.channel
        )));
    }
    let client_cert = args.client_cert.clone().zip(args.client_key.clone());
    let endpoint = endpoint(
        &args.relay,
        args.token.as_deref(),
        args.ca_cert.as_deref(),
        &client_cert,
    )?;
    let fwd = crate::forward::Forwarder::new(&args.forward, args.max_attempts, 1)
        .map_err(Failure::usage)?;
    let mut subs = vec![Sub {
        channel: args.channel.clone(),
        kind: SubKind::Read {
            to: args.to,
            follow: false,
        },
        start,
        window: REPLAY_WINDOW,
        concurrency: 1,
        handler: Handler::Forward(Arc::new(fwd)),
        limit: None,
        delivered: 0,
        failed: 0,
        finished: false,
        until_ms,
        progress: Some(Progress::start("replay", None)),
    }];
    let ctx = Ctx {
        shutdown: signal_shutdown(),
        announce: false,
        relay: endpoint.display_url(),
    };
    let finish = supervisor::supervise(&endpoint, &mut subs, &ctx, Some(REPLAY_MAX_FAILURES)).await;
    if let Some(p) = &subs[0].progress {
        p.finish();
    }
    let finish = finish.map_err(run_failure)?;
    let (delivered, failed) = (subs[0].delivered, subs[0].failed);
    match finish {
        Finish::Done if failed == 0 => {
            eprintln!("replayed {delivered} event(s) of channel {}", args.channel);
            Ok(())
        }
        Finish::Done => Err(Failure::from(anyhow::anyhow!(
            "{failed} of {} event(s) failed (see the log above for offsets and reasons)",
            delivered + failed
        ))),
        Finish::Shutdown | Finish::OutputClosed => Err(Failure::from(anyhow::anyhow!(
            "interrupted after {delivered} delivered and {failed} failed event(s)"
        ))),
    }
}
