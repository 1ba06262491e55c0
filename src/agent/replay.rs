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

use super::args::ReplayArgs;
use super::error::AgentError;
use super::failover::Relays;
use super::plan::{endpoint, signal_shutdown};
use super::session::Ctx;
use super::sink::Handler;
use super::sub::{Sub, SubKind};
use super::supervisor::{self, Finish};
use crate::agent::dispatch::Dispatch;
use crate::agent::forward::Forwarder;
use crate::agent::progress::Progress;
use crate::common::protocol::Start;
use crate::common::time::parse_time_ms;

/// Events the relay may send ahead while one is being delivered; small, because each
/// holds a whole body in memory.
const REPLAY_WINDOW: u32 = 4;
/// Consecutive failed connection attempts before a replay gives up.
const REPLAY_MAX_FAILURES: u32 = 5;

/// Where the replay starts and the `--until` bound (unix ms), from the flags.
fn range(args: &ReplayArgs) -> Result<(Start, Option<u64>), AgentError> {
    let usage = |m: String| AgentError::Usage(m);
    let time =
        |flag: &str, t: &str| parse_time_ms(t).map_err(|e| usage(format!("{flag} {t:?}: {e}")));
    let start = match (args.from, &args.since) {
        (Some(0), None) => return Err(usage("--from: offsets start at 1".to_string())),
        (Some(from), None) => {
            if let Some(to) = args.to.filter(|&to| to < from) {
                return Err(usage(format!("--to {to} is before --from {from}")));
            }
            Start::Offset(from)
        }
        (None, Some(since)) => Start::Time(time("--since", since)?),
        _ => {
            return Err(usage(
                "give exactly one of --from OFFSET and --since TIME".to_string(),
            ))
        }
    };
    let until_ms = match &args.until {
        Some(u) => Some(time("--until", u)?),
        None => None,
    };
    if let (Start::Time(since), Some(until)) = (start, until_ms) {
        if until < since {
            return Err(usage("--until is before --since".to_string()));
        }
    }
    Ok((start, until_ms))
}

/// The one subscription of a replay: a read of the range, forwarded through `fwd`.
fn read_sub(args: &ReplayArgs, start: Start, until_ms: Option<u64>, fwd: Forwarder) -> Sub {
    Sub {
        channel: args.channel.clone(),
        kind: SubKind::Read {
            to: args.to,
            follow: false,
        },
        start,
        window: REPLAY_WINDOW,
        concurrency: 1,
        handler: Handler::Forward(Arc::new(Dispatch::single(fwd))),
        limit: None,
        delivered: 0,
        failed: 0,
        finished: false,
        until_ms,
        progress: Some(Progress::start("replay", None)),
    }
}

pub async fn run(args: ReplayArgs) -> Result<(), AgentError> {
    let (start, until_ms) = range(&args)?;
    if !crate::common::config::valid_channel_name(&args.channel) {
        return Err(AgentError::Usage(format!(
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
    let fwd = Forwarder::new(&args.forward, args.max_attempts, 1).map_err(AgentError::usage)?;
    let mut subs = vec![read_sub(&args, start, until_ms, fwd)];
    let ctx = Ctx {
        shutdown: signal_shutdown(),
        announce: false,
        relay: endpoint.display_url(),
    };
    let finish = supervisor::supervise(
        &mut Relays::one(endpoint),
        &mut subs,
        &ctx,
        Some(REPLAY_MAX_FAILURES),
    )
    .await;
    if let Some(p) = &subs[0].progress {
        p.finish();
    }
    let finish = finish.map_err(AgentError::from)?;
    verdict(finish, &subs[0])
}

/// How the replay ends, once the supervisor returned: success only when every event
/// of the range was delivered.
fn verdict(finish: Finish, sub: &Sub) -> Result<(), AgentError> {
    let (delivered, failed) = (sub.delivered, sub.failed);
    match finish {
        Finish::Done if failed == 0 => {
            eprintln!("replayed {delivered} event(s) of channel {}", sub.channel);
            Ok(())
        }
        Finish::Done => Err(AgentError::Runtime(format!(
            "{failed} of {} event(s) failed (see the log above for offsets and reasons)",
            delivered + failed
        ))),
        Finish::Shutdown | Finish::OutputClosed => Err(AgentError::Runtime(format!(
            "interrupted after {delivered} delivered and {failed} failed event(s)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ReplayArgs,
    }

    fn range_of(extra: &[&str]) -> Result<(Start, Option<u64>), AgentError> {
        let base = [
            "t",
            "--relay",
            "ws://h",
            "--channel",
            "c",
            "--forward",
            "http://l",
        ];
        let args = T::try_parse_from(base.iter().chain(extra).copied())
            .expect("parses")
            .a;
        range(&args)
    }

    #[test]
    fn the_range_comes_from_offsets_or_times() {
        assert_eq!(range_of(&["--from", "3"]), Ok((Start::Offset(3), None)));
        assert_eq!(
            range_of(&[
                "--from",
                "3",
                "--to",
                "3",
                "--until",
                "1970-01-01T00:00:01Z"
            ]),
            Ok((Start::Offset(3), Some(1000)))
        );
        assert_eq!(
            range_of(&["--since", "1970-01-01T00:00:02Z"]),
            Ok((Start::Time(2000), None))
        );
        for bad in [
            &["--from", "0"][..],
            &["--from", "5", "--to", "4"],
            &["--since", "yesterday"],
            &[
                "--since",
                "1970-01-01T00:00:02Z",
                "--until",
                "1970-01-01T00:00:01Z",
            ],
        ] {
            assert!(
                matches!(range_of(bad), Err(AgentError::Usage(_))),
                "{bad:?}"
            );
        }
    }
}
