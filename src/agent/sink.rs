//! Where a session's events go: forwarded to a local service (`agent`, `replay`) or
//! printed as JSON lines (`tail`). The session ([`crate::agent::session`]) speaks the
//! protocol — frames in, acks out, the window — and hands each event here; this file
//! does the output and reports how each event ended, which the session turns into an
//! ack or a dead letter.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::agent::dispatch::Dispatch;
use crate::agent::forward::Outcome;
use crate::common::event::Record;
use crate::common::shutdown::Shutdown;

/// tail's stdout buffer, in bytes.
const STDOUT_BUFFER_BYTES: usize = 64 * 1024;

/// What happens to each event.
#[derive(Debug, Clone)]
pub enum Handler {
    /// Forward to a local service (the first route that takes the event).
    Forward(Arc<Dispatch>),
    /// Print as one JSON line on stdout.
    Print,
}

impl Handler {
    /// Where the events go, for logs (a forward URL without userinfo or query).
    pub fn target(&self) -> String {
        match self {
            Handler::Forward(f) => f.target(),
            Handler::Print => String::from("stdout"),
        }
    }
}

/// Stdout was closed (tail into `head`): the run ends cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputClosed;

/// What printing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// One line was written.
    Line,
    /// The stored record could not be decoded; it was skipped (and logged).
    Skipped,
}

/// tail's output: stdout behind a buffer, created on first use. Lines are flushed by
/// [`Printer::flush`], which the session calls before it sends the acks of those lines
/// (an ack tells the relay the event was handled, which for tail means printed).
#[derive(Default)]
pub struct Printer {
    out: Option<std::io::BufWriter<std::io::Stdout>>,
}

impl Printer {
    /// Prints the stored record `bytes` (event `offset`) as one JSON line.
    pub fn print(&mut self, offset: u64, bytes: &[u8]) -> Result<Printed, OutputClosed> {
        let record = match Record::decode(bytes) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(offset, error = %e, "undecodable event skipped");
                return Ok(Printed::Skipped);
            }
        };
        let out = self.out.get_or_insert_with(|| {
            std::io::BufWriter::with_capacity(STDOUT_BUFFER_BYTES, std::io::stdout())
        });
        write_line(out, &record).map_err(closed)?;
        Ok(Printed::Line)
    }

    /// Writes out the buffered lines.
    pub fn flush(&mut self) -> Result<(), OutputClosed> {
        match &mut self.out {
            Some(out) => out.flush().map_err(closed),
            None => Ok(()),
        }
    }
}

fn closed(e: std::io::Error) -> OutputClosed {
    tracing::debug!(error = %e, "stdout closed");
    OutputClosed
}

/// One record as a JSON line: [`Record::to_json`], the admin API's shape.
fn write_line(out: &mut impl Write, record: &Record) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &record.to_json()).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// What the log lines about an event say besides its channel and offset: its id and,
/// with `--log-bodies`, its body (empty id: the record could not be decoded).
#[derive(Debug, Clone, Default)]
pub struct Tag {
    /// The event id.
    pub id: String,
    /// The clipped body, only with `--log-bodies`.
    pub body: Option<String>,
}

impl Tag {
    fn of(record: &Record) -> Tag {
        Tag {
            id: record.id.clone(),
            body: crate::common::logs::body_field(&record.body),
        }
    }
}

/// A delivery that finished: subscription index, offset, how it ended, and how long
/// it took (from the first attempt, after any `--max-rate` wait).
#[derive(Debug)]
pub struct Done {
    /// Which subscription (index into the session's list).
    pub sub: usize,
    /// The event's offset.
    pub offset: u64,
    /// How the delivery ended.
    pub outcome: Outcome,
    /// How long it took, retries included.
    pub elapsed: Duration,
    /// The event's id (and body) for the log.
    pub tag: Tag,
}

/// An event settled without a delivery task: how it ended and its tag.
#[derive(Debug)]
pub struct NotStarted {
    /// Filtered out, or failed (undecodable).
    pub outcome: Outcome,
    /// The event's id (and body) for the log.
    pub tag: Tag,
}

/// What a delivery task returns.
type Finished = (Outcome, Duration);

/// Deliveries to the local service, running as tasks so that a slow or retrying
/// service never stops the session from answering the relay. Each is tagged with its
/// subscription, offset and event id, so that one that panicked or was aborted still
/// reports (as [`Outcome::Abandoned`]: not acknowledged, delivered again later).
#[derive(Default)]
pub struct Deliveries {
    jobs: JoinSet<Finished>,
    tags: HashMap<tokio::task::Id, (usize, u64, Tag)>,
}

impl Deliveries {
    /// Starts delivering the stored record `bytes` (event `offset` of subscription
    /// `sub`) to the first route of `dispatch` that takes it, once its pacing allows.
    /// A record that cannot be decoded, or that no route takes, is not started: its
    /// outcome is returned at once.
    pub fn start(
        &mut self,
        sub: usize,
        offset: u64,
        bytes: Vec<u8>,
        dispatch: &Dispatch,
        shutdown: Shutdown,
    ) -> Result<(), NotStarted> {
        let record = Record::decode(&bytes).map_err(|e| NotStarted {
            outcome: Outcome::Failed {
                reason: format!("undecodable record ({e})"),
                attempts: 0,
                last_status: None,
            },
            tag: Tag::default(),
        })?;
        drop(bytes);
        let tag = Tag::of(&record);
        let Some(route) = dispatch.pick(&record) else {
            return Err(NotStarted {
                outcome: Outcome::Filtered,
                tag,
            });
        };
        let fwd = route.fwd.clone();
        let probe = dispatch.metrics().cloned();
        // Reserved now, in offset order, so that pacing never reorders deliveries.
        let slot = route.pacer.as_ref().map(|p| p.reserve(Instant::now()));
        let handle = self.jobs.spawn(async move {
            if let Some(at) = slot.filter(|&at| at > Instant::now()) {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = shutdown.wait() => return (Outcome::Abandoned, Duration::ZERO),
                }
            }
            let _held = probe.as_ref().map(|p| p.in_flight());
            let started = Instant::now();
            let outcome = fwd.deliver(record, offset, &shutdown, probe.as_ref()).await;
            (outcome, started.elapsed())
        });
        self.tags.insert(handle.id(), (sub, offset, tag));
        Ok(())
    }

    /// The next delivery to finish; None when none is running.
    pub async fn next(&mut self) -> Option<Done> {
        let joined = self.jobs.join_next_with_id().await?;
        self.done(joined)
    }

    /// A delivery that already finished, without waiting.
    pub fn try_next(&mut self) -> Option<Done> {
        let joined = self.jobs.try_join_next_with_id()?;
        self.done(joined)
    }

    fn done(
        &mut self,
        joined: Result<(tokio::task::Id, Finished), tokio::task::JoinError>,
    ) -> Option<Done> {
        let (id, outcome, elapsed) = match joined {
            Ok((id, (outcome, elapsed))) => (id, outcome, elapsed),
            Err(e) => (e.id(), Outcome::Abandoned, Duration::ZERO),
        };
        let (sub, offset, tag) = self.tags.remove(&id)?;
        Some(Done {
            sub,
            offset,
            outcome,
            elapsed,
            tag,
        })
    }

    /// Deliveries running now.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no delivery is running.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Aborts every running delivery (they were not acked, so they come again).
    pub fn abort_all(&mut self) {
        self.jobs.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::forward::Forwarder;

    fn record() -> Record {
        Record {
            id: "evt_1".into(),
            channel: "c".into(),
            offset: 1,
            received_at_ms: 5,
            method: "POST".into(),
            path: "/p".into(),
            query: String::new(),
            headers: Vec::new(),
            body: b"{}".to_vec(),
            peer: "127.0.0.1:1".into(),
            scheme: "none".into(),
        }
    }

    #[test]
    fn a_line_is_the_records_json_and_a_newline() {
        let mut out = Vec::new();
        write_line(&mut out, &record()).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            json,
            serde_json::to_value(record().to_json()).expect("value")
        );
    }

    #[test]
    fn undecodable_records_are_skipped_not_printed() {
        let mut p = Printer::default();
        assert_eq!(p.print(1, b"not a record"), Ok(Printed::Skipped));
        assert!(p.out.is_none(), "nothing written");
        assert_eq!(p.flush(), Ok(()));
    }

    #[tokio::test]
    async fn an_undecodable_record_fails_without_a_delivery() {
        let fwd = Dispatch::single(Forwarder::new("http://127.0.0.1:1", 1, 1).expect("forwarder"));
        let mut d = Deliveries::default();
        let outcome = d
            .start(0, 3, b"garbage".to_vec(), &fwd, Shutdown::new())
            .unwrap_err()
            .outcome;
        assert!(
            matches!(outcome, Outcome::Failed { attempts: 0, ref reason, .. } if reason.starts_with("undecodable record"))
        );
        assert!(d.is_empty() && d.next().await.is_none());
    }

    #[tokio::test]
    async fn a_finished_delivery_reports_its_sub_and_offset() {
        // Port 1 on loopback refuses at once; one attempt, so the outcome is quick.
        let fwd = Dispatch::single(Forwarder::new("http://127.0.0.1:1", 1, 1).expect("forwarder"));
        let mut d = Deliveries::default();
        d.start(2, 9, record().encode(), &fwd, Shutdown::new())
            .expect("started");
        assert_eq!(d.len(), 1);
        let done = d.next().await.expect("done");
        assert_eq!(
            (done.sub, done.offset, done.tag.id.as_str()),
            (2, 9, "evt_1")
        );
        assert!(matches!(done.outcome, Outcome::Failed { attempts: 1, .. }));
        assert!(d.is_empty());
    }

    #[tokio::test]
    async fn an_aborted_delivery_is_abandoned() {
        let fwd = Dispatch::single(Forwarder::new("http://127.0.0.1:1", 1, 1).expect("forwarder"));
        let mut d = Deliveries::default();
        d.start(0, 4, record().encode(), &fwd, Shutdown::new())
            .expect("started");
        d.abort_all();
        let done = d.next().await.expect("done");
        // Aborted before it ran, or it finished first: either way it reports.
        assert_eq!((done.sub, done.offset), (0, 4));
        assert!(matches!(
            done.outcome,
            Outcome::Abandoned | Outcome::Failed { .. }
        ));
    }
}
