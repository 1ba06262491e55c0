//! The routes as a hyper service for one connection: tags requests with [`ConnInfo`],
//! hands out the upgrade handle, gives bodies their deadline and budget share, and
//! tells the connection's watchdog when each request starts and when its response is
//! done.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::relay::listen::budget::{BodyBudget, Reservation};
use crate::relay::listen::limits::ConnLimits;
use crate::relay::listen::request_body::{RequestBody, Share};
use crate::relay::listen::watch::ConnState;
use crate::relay::state::ConnInfo;

/// One connection's service around the routes `S`.
#[derive(Clone)]
pub struct ConnService<S> {
    inner: S,
    info: ConnInfo,
    conn: Arc<ConnState>,
    budget: Arc<BodyBudget>,
    body_timeout: Duration,
    max_body_bytes: u64,
}

impl<S> ConnService<S> {
    /// Wraps `inner`, telling the connection's watchdog when requests start and end.
    pub fn new(
        inner: S,
        info: ConnInfo,
        conn: Arc<ConnState>,
        budget: Arc<BodyBudget>,
        limits: &ConnLimits,
    ) -> ConnService<S> {
        ConnService {
            inner,
            info,
            conn,
            budget,
            body_timeout: limits.body,
            max_body_bytes: limits.max_body_bytes,
        }
    }
}

type Respond<B> =
    Pin<Box<dyn Future<Output = Result<http::Response<Tracked<B>>, Infallible>> + Send>>;

impl<S, B> hyper::service::Service<http::Request<Incoming>> for ConnService<S>
where
    S: tower_service::Service<
            http::Request<RequestBody>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone,
    S::Future: Send + 'static,
{
    type Response = http::Response<Tracked<B>>;
    type Error = Infallible;
    type Future = Respond<B>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        let active = Active::start(self.conn.clone());
        req.extensions_mut().insert(self.info);
        if req.headers().contains_key(http::header::UPGRADE) {
            let on = hyper::upgrade::on(&mut req);
            req.extensions_mut()
                .insert(crate::relay::stream::socket::PendingUpgrade::new(on));
        }
        let reservation = Arc::new(Reservation::new(self.budget.clone()));
        let share = Share::new(reservation.clone(), self.max_body_bytes);
        let (timeout, conn) = (self.body_timeout, self.conn.clone());
        let req = req.map(|body| RequestBody::new(body, timeout, conn, share));
        // warp's service is ready at all times and cheap to clone.
        let respond = self.inner.clone().call(req);
        Box::pin(async move {
            let resp = respond.await?;
            // The handler is done with the body it buffered: its share goes back (the
            // body, if still alive, holds it until dropped).
            drop(reservation);
            if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                active.conn.mark_upgraded();
            }
            Ok(resp.map(|inner| Tracked {
                inner,
                _active: active,
            }))
        })
    }
}

/// A request in progress, from its head until hyper drops its response body (written
/// out, or the connection gone).
struct Active {
    conn: Arc<ConnState>,
}

impl Active {
    fn start(conn: Arc<ConnState>) -> Active {
        conn.request_started();
        Active { conn }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.conn.request_finished();
    }
}

/// A response body that keeps its request [`Active`] while hyper sends it.
pub struct Tracked<B> {
    inner: B,
    _active: Active,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
