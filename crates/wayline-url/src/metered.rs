//! A body wrapper that counts the bytes going through it and, under a bandwidth limit, holds
//! each chunk back until its turn (see [`crate::limits::Pacer`]): shaping, not cutting. Large
//! frames are sent in pieces so the flow stays smooth.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::limits::{Active, Pacer};

/// Largest piece sent at once under a bandwidth limit.
const PIECE: usize = 16 << 10;

/// Which way the bytes go.
#[derive(Debug, Clone, Copy)]
pub enum Way {
    /// Request bodies, from the client.
    In,
    /// Response bodies, to the client.
    Out,
}

/// Where a body's bytes are counted and paced.
#[derive(Debug, Default)]
pub struct Meter {
    host: Option<Arc<crate::limits::Host>>,
    way: Option<Way>,
    /// Held until the body ends: the request stays in flight while its answer streams.
    active: Option<Active>,
}

impl Meter {
    /// Counts (and paces, when the host has a bandwidth limit) on `host`'s figures.
    pub fn new(host: Arc<crate::limits::Host>, way: Way, active: Option<Active>) -> Self {
        Self {
            host: Some(host),
            way: Some(way),
            active,
        }
    }

    fn pacer(&self) -> Option<&Pacer> {
        let h = self.host.as_ref()?;
        match self.way? {
            Way::In => h.upload.as_ref(),
            Way::Out => h.download.as_ref(),
        }
    }

    fn counter(&self) -> Option<&AtomicU64> {
        let h = self.host.as_ref()?;
        Some(match self.way? {
            Way::In => &h.stats.bytes_in,
            Way::Out => &h.stats.bytes_out,
        })
    }
}

/// `B`, counted and paced.
#[derive(Debug)]
pub struct Metered<B> {
    inner: B,
    meter: Meter,
    /// Bytes received but not yet sent (under a limit).
    rest: Bytes,
    /// The piece whose turn `wait` is waiting for.
    ready: Option<Bytes>,
    wait: Option<Pin<Box<Sleep>>>,
}

impl<B> Metered<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, meter: Meter) -> Self {
        Self {
            inner,
            meter,
            rest: Bytes::new(),
            ready: None,
            wait: None,
        }
    }

    /// Neither counted nor paced.
    pub fn plain(inner: B) -> Self {
        Self::new(inner, Meter::default())
    }
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(w) = &mut this.wait {
                ready!(w.as_mut().poll(cx));
                this.wait = None;
                if let Some(piece) = this.ready.take() {
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
            }
            if let Some(pacer) = this.meter.pacer()
                && !this.rest.is_empty()
            {
                let piece = this.rest.split_to(this.rest.len().min(PIECE));
                let wait = pacer.reserve(piece.len());
                if wait.is_zero() {
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
                this.ready = Some(piece);
                this.wait = Some(Box::pin(tokio::time::sleep(wait)));
                continue;
            }
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => {
                    this.meter.active = None;
                    return Poll::Ready(None);
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(f)) => f,
            };
            let frame = match frame.into_data() {
                Ok(data) => {
                    if let Some(c) = this.meter.counter() {
                        c.fetch_add(data.remaining() as u64, Ordering::Relaxed);
                    }
                    if this.meter.pacer().is_none() {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    this.rest = data;
                    continue;
                }
                Err(other) => other,
            };
            return Poll::Ready(Some(Ok(frame)));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && self.rest.is_empty() && self.ready.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let held = (self.rest.len() + self.ready.as_ref().map_or(0, Bytes::len)) as u64;
        let inner = self.inner.size_hint();
        let mut h = SizeHint::new();
        if let Some(upper) = inner.upper() {
            h.set_upper(upper + held);
        }
        h.set_lower(inner.lower() + held);
        h
    }
}
