//! Deadlines and the size-limit status, enforced around the generated
//! service.
//!
//! tonic's transport already reads `grpc-timeout`, but ends an expired call
//! with `CANCELLED` ("Timeout expired"), and answers an oversized request
//! with `OUT_OF_RANGE`. [`Guarded`] wraps the `Verifier` service so a client
//! sees `DEADLINE_EXCEEDED` and `RESOURCE_EXHAUSTED` as the gRPC spec asks:
//! it starts its own timer at least a millisecond ahead of tonic's (which is
//! started just before, around it), so it fires first, and it rewrites the
//! status tonic answers a too-large unary request with. The deadline is also
//! put into the request's extensions as a [`Deadline`] for streaming calls,
//! whose work outlives the response headers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use super::status;

/// The least margin that still puts our timer a tick (1 ms) ahead of
/// tonic's.
pub(crate) const MIN_MARGIN: Duration = Duration::from_millis(1);

/// When the call must have finished, from the client's `grpc-timeout`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub(crate) Instant);

/// A gRPC service with deadlines and the size-limit status enforced.
#[derive(Debug, Clone)]
pub(crate) struct Guarded<S> {
    inner: S,
    margin: Duration,
    /// Calls being handled, counted up when one starts and down when its
    /// response (or its deadline) comes.
    in_flight: Arc<AtomicU64>,
}

impl<S> Guarded<S> {
    /// Wraps `inner`; calls end `margin` (at least [`MIN_MARGIN`]) before
    /// the client's deadline, and are counted in `in_flight` meanwhile.
    pub(crate) fn new(inner: S, margin: Duration, in_flight: Arc<AtomicU64>) -> Guarded<S> {
        Guarded {
            inner,
            margin: margin.max(MIN_MARGIN),
            in_flight,
        }
    }
}

/// One call counted in flight until dropped.
struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn start(counter: &Arc<AtomicU64>) -> InFlight {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<S> Service<http::Request<Body>> for Guarded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> ResponseFuture {
        let deadline = grpc_timeout(request.headers())
            .map(|timeout| Deadline(Instant::now() + timeout.saturating_sub(self.margin)));
        if let Some(deadline) = deadline {
            request.extensions_mut().insert(deadline);
        }
        let in_flight = InFlight::start(&self.in_flight);
        let response = self.inner.call(request);
        Box::pin(async move {
            let _in_flight = in_flight;
            let response = match deadline {
                Some(Deadline(at)) => match tokio::time::timeout_at(at, response).await {
                    Ok(response) => response?,
                    Err(_) => {
                        tracing::debug!("call ended: deadline exceeded");
                        return Ok(status::deadline_exceeded().into_http());
                    }
                },
                None => response.await?,
            };
            Ok(remap_trailers_only(response))
        })
    }
}

/// A unary request tonic could not read is answered trailers-only, the
/// status in the headers; give it the API's code.
fn remap_trailers_only(response: http::Response<Body>) -> http::Response<Body> {
    match tonic::Status::from_header_map(response.headers()) {
        Some(found) if found.code() != tonic::Code::Ok => {
            let mapped = status::inbound(found.clone());
            if mapped.code() == found.code() {
                response
            } else {
                tracing::debug!(status = %mapped.message(), "request refused: too large");
                mapped.into_http()
            }
        }
        _ => response,
    }
}

/// Parses `grpc-timeout` (`1*8DIGIT` and a unit of `H M S m u n`); an
/// unreadable header means no deadline, as in tonic.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Option<Duration> {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().expect("header value"));
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse("4m"), Some(Duration::from_millis(4)));
        assert_eq!(parse("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
    }

    #[test]
    fn unreadable_grpc_timeout_is_no_deadline() {
        for bad in ["", "m", "10", "+5m", "123456789m", "5x", "5 m", "-1S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }
}
