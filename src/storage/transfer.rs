//! Values that `hookrelay migrate` carries from one backend to another beyond what the
//! [`crate::storage::Storage`] trait exposes: delivery-id claims and redrive marks with
//! their times. A leaf file, so both backends and the migration can name them.

/// One remembered delivery id of a channel: where its original event went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryClaim {
    /// The provider's delivery id.
    pub delivery_id: String,
    /// The original event's offset.
    pub offset: u64,
    /// The original's received-at, unix ms: the dedup window counts from it.
    pub at_ms: u64,
    /// The original event's id (`evt_...`).
    pub event_id: String,
}

/// A pending redrive of one dead letter, with when it was asked (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedriveMark {
    /// The dead letter's offset.
    pub offset: u64,
    /// When the operator asked for the redrive, unix ms.
    pub at_ms: u64,
}
