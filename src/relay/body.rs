//! Reading request bodies with a byte limit, for ingest and the admin API.
//!
//! The limit is checked as chunks arrive, so a body over the limit is refused without
//! being buffered whole. A body that does not arrive in time (see
//! [`crate::relay::listen::request_body`]) is refused with 408, one that does not fit
//! the in-flight budget with 503.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::relay::api_error::ApiError;
use crate::relay::listen::request_body::{BodyTimeout, BudgetExceeded};

/// `Retry-After` for a body refused because too many are in flight: long enough for
/// large bodies in progress to finish.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// Reads the body, refusing as soon as it passes `limit` rather than buffering the rest.
pub async fn read_limited<S, B>(mut body: S, limit: usize) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| refusal(&e))?;
        if buf.len() + chunk.remaining() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            buf.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(buf.freeze())
}

/// The refusal for a body that failed to arrive: its deadline passed, it did not fit
/// the in-flight budget, or it was broken.
fn refusal(e: &warp::Error) -> ApiError {
    use std::error::Error;
    for cause in std::iter::successors(e.source(), |s| (*s).source()) {
        if let Some(t) = cause.downcast_ref::<BodyTimeout>() {
            return ApiError::request_timeout(t.0.as_secs());
        }
        if cause.is::<BudgetExceeded>() {
            return ApiError::busy(BUSY_RETRY_AFTER_SECS);
        }
    }
    ApiError::bad_request("the request body could not be read")
}
