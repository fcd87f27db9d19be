//! The access log: one line per request (target `spares::access`) with the
//! RPC, its gRPC status, latency, request id, peer and principal, written by a
//! tower layer that sits outside every other layer of the server.
//!
//! The status of a gRPC call is not always in the response headers: a failing
//! unary call answers "trailers only" (the status is a header), while a
//! successful call and every stream send it in the trailers after the body.
//! The layer therefore logs as soon as the headers carry `grpc-status`, and
//! otherwise wraps the response body and logs when the trailers pass through
//! it. A request whose future or body is dropped before a status (the client
//! went away, or tonic's request timeout, which runs outside this layer, cut
//! it off) is logged from `Drop` as `DEADLINE_EXCEEDED` when it ran past the
//! request timeout and `CANCELLED` otherwise.
//!
//! The principal hook: the layer puts a [`PrincipalSlot`] into every
//! request's extensions before the interceptor runs. Authentication fills it
//! with [`note_principal`] (from a `tonic::Request`'s `extensions()`), and the
//! access line shows it; requests without one show `principal=-`.

use http::{HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

/// The tracing target of access lines (filter with `RUST_LOG=spares::access=off`).
pub const TARGET: &str = "spares::access";

/// The header carrying a request id: taken from the request when the client
/// sends one, generated otherwise, and echoed on the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client-supplied request id kept (longer ones are replaced by a
/// generated id), so a client cannot make log lines arbitrarily long.
pub const MAX_REQUEST_ID_BYTES: usize = 64;

/// Who made a request, once authentication has said so. The access-log layer
/// inserts an empty slot into every request's extensions; the first
/// [`PrincipalSlot::set`] wins.
#[derive(Clone, Debug, Default)]
pub struct PrincipalSlot(Arc<OnceLock<String>>);

impl PrincipalSlot {
    /// Records the principal's name (ignored if one is already recorded).
    pub fn set(&self, name: impl Into<String>) {
        let _ = self.0.set(name.into());
    }

    /// The principal's name, if authentication recorded one.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// The request id of a request, in its extensions for handlers and spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Records the principal of the request whose extensions these are (a no-op
/// outside the access-log layer, e.g. in unit tests of an interceptor).
pub fn note_principal(extensions: &http::Extensions, name: &str) {
    if let Some(slot) = extensions.get::<PrincipalSlot>() {
        slot.set(name);
    }
}

/// The layer: wrap the server's routes with it, outside the interceptor.
#[derive(Clone, Debug)]
pub struct AccessLogLayer {
    request_timeout: Duration,
}

impl AccessLogLayer {
    /// A layer for a server whose request timeout is `request_timeout` (used
    /// to tell a deadline from a cancellation when a request is cut off).
    pub fn new(request_timeout: Duration) -> Self {
        Self { request_timeout }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            request_timeout: self.request_timeout,
        }
    }
}

/// The service the layer wraps around the routes.
#[derive(Clone, Debug)]
pub struct AccessLog<S> {
    inner: S,
    request_timeout: Duration,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AccessLog<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body + Unpin,
{
    type Response = Response<AccessBody<ResBody>>;
    type Error = S::Error;
    type Future = AccessFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let entry = Entry::start(&mut request, self.request_timeout);
        AccessFuture {
            inner: self.inner.call(request),
            entry: Some(entry),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future: logs trailers-only answers, else hands the
    /// entry to the body.
    pub struct AccessFuture<F> {
        #[pin]
        inner: F,
        entry: Option<Entry>,
    }
}

impl<F, ResBody, E> Future for AccessFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Body + Unpin,
{
    type Output = Result<Response<AccessBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut entry = this.entry.take();
        Poll::Ready(match result {
            Ok(mut response) => {
                if let Some(entry) = entry.as_ref()
                    && let Ok(value) = HeaderValue::from_str(&entry.request_id)
                {
                    response.headers_mut().insert(REQUEST_ID_HEADER, value);
                }
                if let Some(code) = grpc_code(response.headers()) {
                    if let Some(entry) = entry.take() {
                        entry.finish(code);
                    }
                } else if !response.status().is_success() {
                    // Not gRPC at all (e.g. HTTP/1 to a gRPC port): tonic
                    // answers with an HTTP status and no grpc-status.
                    if let Some(entry) = entry.take() {
                        entry.finish(Code::Unknown);
                    }
                }
                Ok(response.map(|inner| AccessBody { inner, entry }))
            }
            Err(error) => {
                if let Some(entry) = entry {
                    entry.finish(Code::Unknown);
                }
                Err(error)
            }
        })
    }
}

/// The response body: passes frames through and logs when the trailers (or
/// the end of the body) arrive.
pub struct AccessBody<B> {
    inner: B,
    entry: Option<Entry>,
}

impl<B: Body + Unpin> Body for AccessBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(entry) = self.entry.take()
                {
                    entry.finish(grpc_code(trailers).unwrap_or(Code::Unknown));
                }
            }
            Some(Err(_)) => {
                if let Some(entry) = self.entry.take() {
                    entry.finish(Code::Unknown);
                }
            }
            None => {
                // A body that ends without trailers carried no status; for
                // non-gRPC answers that is an ordinary end.
                if let Some(entry) = self.entry.take() {
                    entry.finish(Code::Ok);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One request on its way through: what its access line will say.
pub struct Entry {
    rpc: String,
    request_id: String,
    peer: Option<std::net::SocketAddr>,
    principal: PrincipalSlot,
    started: Instant,
    request_timeout: Duration,
    done: bool,
}

impl Entry {
    fn start<B>(request: &mut Request<B>, request_timeout: Duration) -> Self {
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_plain_id(v))
            .map_or_else(next_request_id, str::to_string);
        // Over TLS the TCP details sit inside the TLS connection's info.
        let extensions = request.extensions();
        let peer = extensions
            .get::<TcpConnectInfo>()
            .or_else(|| {
                extensions
                    .get::<TlsConnectInfo<TcpConnectInfo>>()
                    .map(TlsConnectInfo::get_ref)
            })
            .and_then(TcpConnectInfo::remote_addr);
        let principal = PrincipalSlot::default();
        request.extensions_mut().insert(principal.clone());
        request
            .extensions_mut()
            .insert(RequestId(request_id.clone()));
        Self {
            rpc: request.uri().path().trim_start_matches('/').to_string(),
            request_id,
            peer,
            principal,
            started: Instant::now(),
            request_timeout,
            done: false,
        }
    }

    fn finish(mut self, code: Code) {
        self.done = true;
        self.log(code);
    }

    fn log(&self, code: Code) {
        let elapsed = self.started.elapsed();
        let status = code_name(code);
        crate::metrics::metrics().observe_rpc(&self.rpc, status, elapsed);
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        let principal = self.principal.get().unwrap_or("-");
        let peer = self
            .peer
            .map_or_else(|| "-".to_string(), |peer| peer.to_string());
        // Microsecond resolution: the text line stays short, JSON gets a number.
        let latency_ms = (latency_ms * 1000.0).round() / 1000.0;
        // Health checks come every few seconds from load balancers; they stay
        // out of the default level unless they fail.
        let routine = self.rpc.starts_with("grpc.health.") && code == Code::Ok;
        if routine {
            tracing::debug!(target: TARGET, rpc = %self.rpc, status = %status, latency_ms,
                request_id = %self.request_id, peer = %peer, principal = %principal, "access");
        } else if is_server_fault(code) {
            tracing::warn!(target: TARGET, rpc = %self.rpc, status = %status, latency_ms,
                request_id = %self.request_id, peer = %peer, principal = %principal, "access");
        } else {
            tracing::info!(target: TARGET, rpc = %self.rpc, status = %status, latency_ms,
                request_id = %self.request_id, peer = %peer, principal = %principal, "access");
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if !self.done {
            let code = if self.started.elapsed() >= self.request_timeout {
                Code::DeadlineExceeded
            } else {
                Code::Cancelled
            };
            self.log(code);
        }
    }
}

/// Statuses that mean the server (not the request) is at fault: logged at
/// WARN so an operator's alert on warnings sees them.
fn is_server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown | Code::Internal | Code::DataLoss | Code::Unavailable | Code::Unimplemented
    )
}

fn grpc_code(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// A client id is kept only when it is short and plain (letters, digits,
/// `-`, `_`, `.`), so it cannot forge log fields.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A process-unique id: a tag from the start time and a counter.
fn next_request_id() -> String {
    static TAG: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let tag = *TAG.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32))
    });
    format!("{tag:08x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The canonical upper-case name of a gRPC status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request_ids_are_kept_only_when_plain() {
        assert!(is_plain_id("abc-123_x.y"));
        assert!(!is_plain_id(""));
        assert!(!is_plain_id("a b"));
        assert!(!is_plain_id("a\"b"));
        assert!(!is_plain_id(&"x".repeat(MAX_REQUEST_ID_BYTES + 1)));
    }

    #[test]
    fn generated_request_ids_differ() {
        assert_ne!(next_request_id(), next_request_id());
    }

    #[test]
    fn the_principal_slot_keeps_the_first_name() {
        let mut extensions = http::Extensions::new();
        note_principal(&extensions, "nobody"); // no slot: nothing happens
        let slot = PrincipalSlot::default();
        extensions.insert(slot.clone());
        note_principal(&extensions, "alice");
        note_principal(&extensions, "mallory");
        assert_eq!(slot.get(), Some("alice"));
    }

    #[test]
    fn status_names_are_canonical() {
        assert_eq!(code_name(Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(Code::from_bytes(b"5")), "NOT_FOUND");
        assert!(is_server_fault(Code::Internal));
        assert!(!is_server_fault(Code::InvalidArgument));
    }
}
