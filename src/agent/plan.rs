//! From arguments to a run: the routes of an agent ([`agent_plan`]), each route's
//! subscription, the relay endpoint, and the signal-driven shutdown shared by
//! `agent`, `replay` and `tail`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::args::AgentArgs;
use super::delivery::{check_timeout, DeliverySettings, ExtraHeader};
use super::dial::{Endpoint, TlsFiles};
use super::dispatch::{Dispatch, RouteTarget};
use super::error::AgentError;
use super::failover::Relays;
use super::filter::Filter;
use super::pacer::{check_rate, Pacer};
use super::routes::{self, Plan, Route, RouteDefaults};
use super::sink::Handler;
use super::sub::{Sub, SubKind};
use crate::common::protocol::Start;
use crate::common::shutdown::Shutdown;

/// The routes of an agent run, from `--config` and/or the flags.
pub fn agent_plan(args: &AgentArgs) -> Result<Plan, AgentError> {
    let start = check_route_flags(args)?;
    let extras = route_extras(args)?;
    match &args.config {
        Some(path) => plan_from_file(args, path, extras),
        None => plan_from_flags(args, start, extras),
    }
}

/// `--filter`, `--max-rate`, `--timeout`, `--forward-ca-cert` and `--header`, checked.
fn route_extras(args: &AgentArgs) -> Result<RouteExtras, AgentError> {
    let usage = AgentError::Usage;
    let filters = args
        .filters
        .iter()
        .map(|e| Filter::parse(e).map_err(|m| usage(format!("--filter: {m}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let max_rate = args
        .max_rate
        .map(check_rate)
        .transpose()
        .map_err(|m| usage(format!("--max-rate {m}")))?;
    let timeout = check_timeout(args.timeout).map_err(|m| usage(format!("--timeout {m}")))?;
    let headers = args
        .headers
        .iter()
        .map(|h| ExtraHeader::parse(h).map_err(|m| usage(format!("--header: {m}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RouteExtras {
        filters,
        max_rate,
        delivery: DeliverySettings {
            timeout,
            ca_cert: args.forward_ca_cert.clone(),
            headers,
        },
    })
}

/// The per-route settings the flags give (defaults for agent.toml routes).
struct RouteExtras {
    filters: Vec<Filter>,
    max_rate: Option<f64>,
    delivery: DeliverySettings,
}

/// Checks the flags every route takes as its defaults; returns `--from` parsed.
fn check_route_flags(args: &AgentArgs) -> Result<Start, AgentError> {
    let usage = AgentError::Usage;
    if !routes::valid_group(&args.group) {
        return Err(usage(format!(
            "--group {:?}: must match [A-Za-z0-9_-]{{1,64}}",
            args.group
        )));
    }
    let start = routes::parse_start(&args.from).map_err(|m| usage(format!("--from {m}")))?;
    routes::check_window(args.max_in_flight).map_err(|m| usage(format!("--max-in-flight {m}")))?;
    if args.max_attempts == 0 {
        return Err(usage("--max-attempts must be at least 1".into()));
    }
    Ok(start)
}

/// The routes of agent.toml at `path`; the flags fill in what it leaves out.
fn plan_from_file(args: &AgentArgs, path: &Path, extras: RouteExtras) -> Result<Plan, AgentError> {
    let usage = AgentError::Usage;
    if args.channel.is_some() || args.forward.is_some() {
        return Err(usage(
            "--channel/--forward cannot be combined with --config (add a [[route]] instead)".into(),
        ));
    }
    let defaults = RouteDefaults {
        group: args.group.clone(),
        from: args.from.clone(),
        max_in_flight: args.max_in_flight,
        max_attempts: args.max_attempts,
        filters: extras.filters,
        max_rate: extras.max_rate,
        delivery: extras.delivery,
    };
    let file = routes::load(path, &defaults).map_err(AgentError::usage)?;
    // The command line's list replaces the file's as a whole: mixing them would leave
    // no clear first (preferred) relay.
    let relays = if args.relays.is_empty() {
        file.relays
    } else {
        args.relays.clone()
    };
    if relays.is_empty() {
        return Err(usage(format!(
            "{}: no relay: set relay = \"wss://...\" or pass --relay",
            path.display()
        )));
    }
    let client_cert = args.client_cert.clone().zip(args.client_key.clone());
    Ok(Plan {
        relays,
        token: args.token.clone().or(file.token),
        ca_cert: args.ca_cert.clone().or(file.ca_cert),
        client_cert: client_cert.or(file.client_cert),
        routes: file.routes,
        quiet: args.quiet,
        metrics_listen: args.metrics_listen.or(file.metrics_listen),
    })
}

/// The one route of `--relay`, `--channel` and `--forward`.
fn plan_from_flags(
    args: &AgentArgs,
    start: Start,
    extras: RouteExtras,
) -> Result<Plan, AgentError> {
    let usage = AgentError::Usage;
    let missing = |flag: &str| usage(format!("{flag} is required (or --config agent.toml)"));
    if args.relays.is_empty() {
        return Err(missing("--relay"));
    }
    let channel = args.channel.clone().ok_or_else(|| missing("--channel"))?;
    let forward = args.forward.clone().ok_or_else(|| missing("--forward"))?;
    if !crate::common::config::valid_channel_name(&channel) {
        return Err(usage(format!(
            "--channel {channel:?}: must match [A-Za-z0-9_-]{{1,64}}"
        )));
    }
    Ok(Plan {
        relays: args.relays.clone(),
        token: args.token.clone(),
        ca_cert: args.ca_cert.clone(),
        client_cert: args.client_cert.clone().zip(args.client_key.clone()),
        routes: vec![Route {
            channel,
            forward,
            group: args.group.clone(),
            start,
            max_in_flight: args.max_in_flight,
            max_attempts: args.max_attempts,
            filters: extras.filters,
            max_rate: extras.max_rate,
            delivery: extras.delivery,
        }],
        quiet: args.quiet,
        metrics_listen: args.metrics_listen,
    })
}

/// Events an agent accepts from the relay beyond its deliveries in flight.
///
/// Without them, a delivery that finishes leaves its slot empty for a whole round trip
/// (ack to the relay, log read, event back); with them, the next event is already
/// here. Prefetched events are not delivered yet, so they never count as duplicates:
/// after a crash or a takeover the relay sends them again, and the local service still
/// sees at most `--max-in-flight` events twice. A silent partition is the exception: the
/// agent goes on delivering its queue until it notices (within three of the relay's
/// heartbeats), and the acks of those deliveries are lost, so up to the whole window
/// comes twice (tests/netfaults.rs measures it). The price is memory: up to this many
/// more events held in the agent (64 KiB of 1 KiB events; 64 MiB at the largest
/// bodies a relay accepts by default).
pub const PREFETCH_EVENTS: u32 = 64;

/// The window an agent asks for: its deliveries in flight plus [`PREFETCH_EVENTS`].
pub fn prefetch_window(max_in_flight: u32) -> u32 {
    max_in_flight
        .saturating_add(PREFETCH_EVENTS)
        .min(crate::common::protocol::MAX_WINDOW)
}

/// One subscription per channel and group: routes that share them share it, and each
/// event goes to the first of them that takes it ([`Dispatch`]).
pub(crate) fn group_subs(plan: &Plan) -> Result<Vec<Sub>, AgentError> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in &plan.routes {
        if !keys.contains(&(r.channel.as_str(), r.group.as_str())) {
            keys.push((&r.channel, &r.group));
        }
    }
    keys.into_iter()
        .map(|(channel, group)| {
            let routes: Vec<&Route> = plan
                .routes
                .iter()
                .filter(|r| r.channel == channel && r.group == group)
                .collect();
            group_sub(&routes, !plan.quiet)
        })
        .collect()
}

/// The subscription of `routes` (one channel and group, at least one route); the
/// first route gives its start and window.
fn group_sub(routes: &[&Route], log_deliveries: bool) -> Result<Sub, AgentError> {
    let first = routes
        .first()
        .ok_or_else(|| AgentError::Usage("no route".into()))?;
    let mut targets = Vec::with_capacity(routes.len());
    for route in routes {
        let fwd = crate::agent::forward::Forwarder::with_settings(
            &route.forward,
            route.max_attempts,
            first.max_in_flight as usize,
            &route.delivery,
        )
        .map_err(AgentError::usage)?;
        targets.push(RouteTarget {
            filters: route.filters.clone(),
            fwd: Arc::new(fwd),
            pacer: route.max_rate.map(Pacer::new),
        });
    }
    Ok(Sub {
        channel: first.channel.clone(),
        kind: SubKind::Group {
            group: first.group.clone(),
        },
        start: first.start,
        window: prefetch_window(first.max_in_flight),
        concurrency: first.max_in_flight,
        handler: Handler::Forward(Arc::new(
            Dispatch::new(targets, log_deliveries).with_metrics(channel_metrics(&first.channel)),
        )),
        limit: None,
        delivered: 0,
        failed: 0,
        finished: false,
        until_ms: None,
        progress: None,
    })
}

/// The metrics of `channel` in the process's registry (None if it could not be made,
/// which only a bug would cause: the agent then runs without them).
fn channel_metrics(channel: &str) -> Option<crate::agent::metrics::ChannelMetrics> {
    match crate::agent::metrics::AgentMetrics::global() {
        Ok(m) => Some(m.channel(channel)),
        Err(e) => {
            tracing::warn!(error = %e, "agent metrics unavailable");
            None
        }
    }
}

/// The relay endpoint; a bad URL, token or TLS file is a usage error.
pub(crate) fn endpoint(
    relay: &str,
    token: Option<&str>,
    ca_cert: Option<&std::path::Path>,
    client_cert: &Option<(PathBuf, PathBuf)>,
) -> Result<Endpoint, AgentError> {
    Endpoint::new(
        relay,
        token,
        TlsFiles {
            ca_cert,
            client_cert: client_cert
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
        },
    )
    .map_err(AgentError::usage)
}

/// The endpoints of every relay URL of `plan`, in order; any bad URL, the token or a
/// TLS file is a usage error before anything is dialled.
pub(crate) fn relays(plan: &Plan) -> Result<Relays, AgentError> {
    let endpoints = plan
        .relays
        .iter()
        .map(|url| {
            endpoint(
                url,
                plan.token.as_deref(),
                plan.ca_cert.as_deref(),
                &plan.client_cert,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Relays::new(endpoints).ok_or_else(|| AgentError::Usage("--relay is required".into()))
}

/// A shutdown that SIGINT/SIGTERM triggers.
pub(crate) fn signal_shutdown() -> Shutdown {
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        crate::common::shutdown::signal().await;
        tracing::info!("signal received: stopping");
        s.trigger();
    });
    shutdown
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: AgentArgs,
    }

    fn args(extra: &[&str]) -> AgentArgs {
        T::try_parse_from(std::iter::once("t").chain(extra.iter().copied()))
            .expect("parses")
            .a
    }

    #[test]
    fn flags_make_one_route() {
        let p = agent_plan(&args(&[
            "--relay",
            "http://h:1",
            "--channel",
            "c",
            "--forward",
            "http://l:2",
            "--from",
            "7",
            "--max-in-flight",
            "4",
            "--group",
            "g",
        ]))
        .expect("ok");
        assert_eq!(p.routes.len(), 1);
        let r = &p.routes[0];
        assert_eq!(
            (r.group.as_str(), r.start, r.max_in_flight, r.max_attempts),
            ("g", crate::common::protocol::Start::Offset(7), 4, 10)
        );
    }

    #[test]
    fn delivery_flags_reach_the_route() {
        let base = [
            "--relay",
            "ws://h",
            "--channel",
            "c",
            "--forward",
            "http://l",
        ];
        let p = agent_plan(&args(
            &[
                &base[..],
                &[
                    "--filter",
                    "header:X-A=1",
                    "--filter",
                    "json:/k^=v",
                    "--max-rate",
                    "2.5",
                    "--timeout",
                    "3",
                    "--header",
                    "X-Token: t",
                    "--forward-ca-cert",
                    "ca.pem",
                    "--quiet",
                ],
            ]
            .concat(),
        ))
        .expect("ok");
        let r = &p.routes[0];
        assert_eq!((r.filters.len(), r.max_rate), (2, Some(2.5)));
        assert_eq!(r.delivery.timeout, std::time::Duration::from_secs(3));
        assert_eq!(r.delivery.headers.len(), 1);
        assert_eq!(r.delivery.ca_cert, Some(PathBuf::from("ca.pem")));
        assert!(p.quiet);
        for bad in [
            &["--filter", "nope"][..],
            &["--max-rate", "0"],
            &["--timeout=-1"],
            &["--header", "no colon"],
        ] {
            assert!(
                agent_plan(&args(&[&base[..], bad].concat())).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn relay_may_repeat_and_every_url_is_checked() {
        let base = ["--channel", "c", "--forward", "http://l"];
        let p = agent_plan(&args(
            &[&base[..], &["--relay", "ws://a:1", "--relay", "http://b:2"]].concat(),
        ))
        .expect("ok");
        assert_eq!(p.relays, vec!["ws://a:1".to_string(), "http://b:2".into()]);
        let r = relays(&p).expect("endpoints");
        assert_eq!(r.len(), 2);
        assert_eq!(r.current().display_url(), "ws://a:1/v1/stream");
        let bad = agent_plan(&args(
            &[&base[..], &["--relay", "ws://a:1", "--relay", "ftp://b"]].concat(),
        ))
        .expect("plan");
        assert!(relays(&bad).is_err(), "the second URL is checked too");
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in [
            &["--channel", "c", "--forward", "http://l"][..],
            &["--relay", "ws://h", "--forward", "http://l"],
            &[
                "--relay",
                "ws://h",
                "--channel",
                "c d",
                "--forward",
                "http://l",
            ],
            &[
                "--relay",
                "ws://h",
                "--channel",
                "c",
                "--forward",
                "http://l",
                "--from",
                "never",
            ],
            &[
                "--relay",
                "ws://h",
                "--channel",
                "c",
                "--forward",
                "http://l",
                "--max-in-flight",
                "0",
            ],
            &[
                "--relay",
                "ws://h",
                "--channel",
                "c",
                "--forward",
                "http://l",
                "--group",
                "a/b",
            ],
            &["--relay", "ws://h", "--channel", "c", "--config", "a.toml"],
        ] {
            assert!(agent_plan(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
