//! Operators' actions between relay nodes: a core NATS subject, `{prefix}.control.groups`.
//!
//! A reset or a redrive is durable in the buckets before it is announced here, so the
//! announcement only makes running subscriptions on other nodes act at once (restart
//! at the reset point, read the redrive marks). Core NATS is at-most-once: a node that
//! is disconnected from NATS at that moment misses the event; its subscriptions stop
//! anyway when the disconnect costs them their lease, and a subscription that starts
//! later reads cursors and marks from the buckets.
//!
//! The subject has three tokens, so no channel's stream (`{prefix}.{channel}`) ever
//! captures it. Each message carries the sender's node id, and a node ignores its own:
//! its hub applied the action already.

use async_nats::Client;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::connect::fail;
use super::names::Names;
use crate::storage::error::StorageError;
use crate::storage::lease::Control;

/// Control events queued for a slow relay before the oldest are dropped.
const CONTROL_QUEUE_EVENTS: usize = 1024;

#[derive(Serialize, Deserialize)]
struct Envelope {
    node: String,
    event: Control,
}

/// The subject, this node's id, and the events from other nodes.
pub struct ControlBus {
    client: Client,
    subject: String,
    node: String,
    events: broadcast::Sender<Control>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for ControlBus {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl ControlBus {
    /// Subscribes to the subject (before the relay serves, so nothing after is missed).
    pub async fn open(
        client: Client,
        names: &Names,
        node: String,
    ) -> Result<ControlBus, StorageError> {
        let subject = names.control_subject();
        let mut sub = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| fail(format!("subscribing to {subject}: {e}")))?;
        let (events, _) = broadcast::channel(CONTROL_QUEUE_EVENTS);
        let tx = events.clone();
        let me = node.clone();
        let listener = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                match serde_json::from_slice::<Envelope>(&msg.payload) {
                    Ok(env) if env.node != me => {
                        // No receiver (nothing running yet) is fine: nothing to act on.
                        let _ = tx.send(env.event);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "storage: unreadable control event ignored")
                    }
                }
            }
        });
        Ok(ControlBus {
            client,
            subject,
            node,
            events,
            listener,
        })
    }

    /// Sends `event` to every other node, and waits until the server has it.
    pub async fn publish(&self, event: Control) -> Result<(), StorageError> {
        let env = Envelope {
            node: self.node.clone(),
            event,
        };
        let payload = serde_json::to_vec(&env).map_err(|e| fail(format!("control event: {e}")))?;
        self.client
            .publish(self.subject.clone(), payload.into())
            .await
            .map_err(|e| fail(format!("publishing to {}: {e}", self.subject)))?;
        self.client
            .flush()
            .await
            .map_err(|e| fail(format!("publishing to {}: {e}", self.subject)))
    }

    /// A receiver of other nodes' events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Control> {
        self.events.subscribe()
    }
}
