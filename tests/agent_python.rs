//! The agent against a Python `http.server`-style local service (head and body in two
//! writes, no TCP_NODELAY): no 40 ms delayed-ACK stall per event (TCP_QUICKACK), and
//! `--max-rate` pacing measured from the service's arrival times.

mod common;
#[path = "common/local_services.rs"]
mod local_services;

use std::time::Duration;

use common::*;
use local_services::PyTarget;

const TOKEN: &str = "agent-token-1";

fn start_relay(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(
        dir,
        "admin_token = \"adm\"",
        &format!("[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"),
    )
}

/// Posts `n` small events to channel `c`.
fn backlog(relay: &RelayProc, n: usize) {
    for i in 0..n {
        let (status, _) = post_raw(
            &relay.url("/hooks/c"),
            "POST",
            &[],
            format!("{{\"n\":{i}}}").as_bytes(),
        );
        assert_eq!(status, 200);
    }
}

fn agent(relay: &RelayProc, forward: &str, extra: &[&str]) -> AgentProc {
    let mut args = common::forward_args(&relay.base, "c", forward, TOKEN);
    args.push("--quiet");
    args.extend_from_slice(extra);
    AgentProc::start(&args)
}

/// Offsets in arrival order, and the span from the first arrival to the last (s).
fn order_and_span(arrivals: &[(u64, f64)]) -> (Vec<u64>, f64) {
    let offsets = arrivals.iter().map(|(o, _)| *o).collect();
    let first = arrivals.first().map_or(0.0, |a| a.1);
    let last = arrivals.last().map_or(0.0, |a| a.1);
    (offsets, last - first)
}

/// The median time between consecutive arrivals, in ms.
fn median_gap_ms(arrivals: &[(u64, f64)]) -> f64 {
    let mut times: Vec<f64> = arrivals.iter().map(|a| a.1).collect();
    times.sort_by(f64::total_cmp);
    let mut gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) * 1e3).collect();
    gaps.sort_by(f64::total_cmp);
    gaps.get(gaps.len() / 2).copied().unwrap_or(f64::MAX)
}

#[test]
fn python_target_gets_300_events_in_order_without_delayed_ack_stalls() {
    const EVENTS: usize = 300;
    for window in ["1", "8"] {
        let dir = tempfile::tempdir().expect("tmp");
        let relay = start_relay(dir.path());
        let target = PyTarget::start();
        backlog(&relay, EVENTS);
        let _agent = agent(&relay, &target.url(), &["--max-in-flight", window]);
        let arrivals = target.wait_for(EVENTS, DEADLINE);
        let (offsets, span) = order_and_span(&arrivals);
        // The stall is the service's delayed ACK: ~40 ms before *every* event. So the
        // typical gap between arrivals tells, not the total time, which a loaded
        // machine stretches (a busy CI core once made 300 events take 1.5 s, 5 ms each).
        let gap_ms = median_gap_ms(&arrivals);
        assert!(
            gap_ms < 20.0,
            "--max-in-flight {window}: median gap {gap_ms:.1} ms between arrivals (a delayed-ACK \
             stall is ~40 ms per event); {EVENTS} events took {span:.2} s"
        );
        if window == "1" {
            let want: Vec<u64> = (1..=EVENTS as u64).collect();
            assert_eq!(offsets, want, "strict order, each once");
        } else {
            let mut sorted = offsets.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), EVENTS, "every event arrived");
        }
    }
}

#[test]
fn max_rate_paces_a_backlog_without_losing_or_reordering() {
    const EVENTS: usize = 260;
    const RATE: f64 = 50.0;
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = PyTarget::start();
    backlog(&relay, EVENTS);
    let _agent = agent(&relay, &target.url(), &["--max-rate", "50"]);
    let arrivals = target.wait_for(EVENTS, Duration::from_secs(20));
    let (offsets, _) = order_and_span(&arrivals);
    let want: Vec<u64> = (1..=EVENTS as u64).collect();
    assert_eq!(offsets, want, "nothing lost, in order");
    // Over the first 5 s of deliveries: the rate stays within ±10 % of 50/s.
    let t0 = arrivals[0].1;
    let in_5s = arrivals.iter().filter(|(_, t)| *t - t0 < 5.0).count() as f64;
    let rate = in_5s / 5.0;
    assert!(
        (rate - RATE).abs() <= RATE * 0.1,
        "{in_5s} events in the first 5 s: {rate:.1}/s, want {RATE}/s ± 10 %"
    );
    // And no burst anywhere: no 1 s window holds more than 10 % over the rate.
    for (i, (_, t)) in arrivals.iter().enumerate() {
        let in_window = arrivals[i..]
            .iter()
            .take_while(|(_, u)| *u - t < 1.0)
            .count();
        assert!(
            in_window as f64 <= RATE * 1.1 + 1.0,
            "burst of {in_window} in 1 s"
        );
    }
}
