//! Relay side of the agent stream (`GET /v1/stream`). Placeholder until the stream
//! module lands: it answers 404 so the rest of the relay can be built and tested.

use std::sync::Arc;

use warp::Filter;

use crate::server::Relay;

/// Registry of consumer groups and their active/standby subscriptions.
#[derive(Debug, Default)]
pub struct Hub {}

pub fn route(
    _relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("v1" / "stream")
        .and_then(|| async { Err::<warp::reply::Response, _>(warp::reject::not_found()) })
}
