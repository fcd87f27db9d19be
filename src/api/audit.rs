//! The audit trail's one recorder: a tower layer inside the gate that, for
//! every call of an RPC the authorisation table marks as writing
//! ([`Effect`]), appends one [`AuditEvent`] (principal, time, RPC,
//! idempotency keys, status code) to the store after the handler answered
//! and before the answer leaves, flushed like every other write.
//!
//! Handlers only note what the layer cannot see in the encoded request: its
//! idempotency keys ([`note_keys`]), which also marks a
//! [`Effect::WritesWhenNoted`] call (`PromiseOrder` with `reserve`) as a
//! write. Nothing else is recorded: credentials travel in headers, which the
//! layer never reads.
//!
//! The status: a failing unary call answers trailers-only, so its code is in
//! the response headers; a successful one carries `grpc-status: 0` in the
//! trailers after its single message, which only an encoding failure could
//! change, so the layer records OK when the headers carry no status. For a
//! streaming answer (`Backup`) that OK means the stream started; a failure
//! part-way is in the access log.
//!
//! Calls the gate refuses (no credentials, a role the table does not list,
//! a rate limit) never reach this layer: they are in the access log, not
//! the audit trail, so a flood of refused calls cannot fill the disk with
//! flushed records.

use crate::auth::table::{self, Effect};
use crate::domain::audit::AuditEvent;
use crate::service::Spares;
use http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// What a handler noted about its request, shared with the layer through
/// the request's extensions.
#[derive(Debug, Clone, Default)]
pub struct AuditNote(Arc<Mutex<Noted>>);

#[derive(Debug, Default)]
struct Noted {
    keys: Vec<String>,
    writes: bool,
}

/// Notes the idempotency keys of `request` (empty keys are skipped) and
/// that it writes. A no-op outside the audit layer (unit tests).
pub fn note_keys<'a, T>(request: &tonic::Request<T>, keys: impl IntoIterator<Item = &'a str>) {
    if let Some(note) = request.extensions().get::<AuditNote>()
        && let Ok(mut noted) = note.0.lock()
    {
        noted.writes = true;
        noted.keys.extend(
            keys.into_iter()
                .filter(|k| !k.is_empty())
                .map(str::to_string),
        );
    }
}

/// The layer: wrap the routes with it inside the gate.
#[derive(Clone)]
pub struct AuditLayer {
    spares: Arc<Spares>,
}

impl AuditLayer {
    /// Records into `spares`' store with its clock.
    pub fn new(spares: Arc<Spares>) -> Self {
        Self { spares }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Audit<S> {
        Audit {
            inner,
            spares: self.spares.clone(),
        }
    }
}

/// The service the layer wraps around the routes.
#[derive(Clone)]
pub struct Audit<S> {
    inner: S,
    spares: Arc<Spares>,
}

/// The response future of a recorded call.
pub type AuditFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Audit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = AuditFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path().to_string();
        let effect = table::effect(&path);
        let caller = request
            .extensions()
            .get::<super::gate::Caller>()
            .map(|c| c.0.clone());
        let (Some(principal), false) = (caller, effect == Effect::Reads) else {
            return Box::pin(self.inner.call(request));
        };
        let note = AuditNote::default();
        request.extensions_mut().insert(note.clone());
        let answered = self.inner.call(request);
        let spares = self.spares.clone();
        Box::pin(async move {
            let response = answered.await?;
            let noted = note.0.lock().map(|n| (n.writes, n.keys.clone()));
            let (writes, keys) = noted.unwrap_or_default();
            if effect == Effect::WritesWhenNoted && !writes {
                return Ok(response);
            }
            let event = AuditEvent {
                id: 0,
                at: spares.clock().now(),
                principal_id: principal.id.clone(),
                role: principal.role.name().to_string(),
                rpc: path,
                idempotency_keys: keys,
                status_code: status_code(response.headers()),
            };
            record(&spares, event).await;
            Ok(response)
        })
    }
}

/// The gRPC status code of an answer from its headers: the code of a
/// trailers-only answer, else 0 (see the module docs).
fn status_code(headers: &http::HeaderMap) -> i32 {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Appends `event` off the async runtime (it flushes). A failure is logged
/// and counted, and the answer still goes out: the call's own write is
/// already committed, and refusing its answer would only make the client
/// retry a call that succeeded.
async fn record(spares: &Arc<Spares>, event: AuditEvent) {
    let spares = spares.clone();
    let rpc = event.rpc.clone();
    let written =
        tokio::task::spawn_blocking(move || spares.store().append_audit_event(event)).await;
    match written {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::error!(%error, rpc, "cannot record an audit event"),
        Err(error) => tracing::error!(%error, rpc, "the audit recorder failed"),
    }
}
