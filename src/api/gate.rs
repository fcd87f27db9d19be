//! The gate: the one tower layer in front of every RPC that authenticates
//! the caller, checks the authorisation table (`auth::table`) for the RPC's
//! path, applies the caller's rate limit, and hands the caller to the
//! handler as a [`Caller`] in the request's extensions (handlers then check
//! scope). A tonic interceptor cannot do this: it never sees the RPC path.
//!
//! Refusals: no or bad credentials are `UNAUTHENTICATED` with one message
//! whatever the reason (a caller cannot learn which key ids exist); a role
//! the table does not list is `PERMISSION_DENIED` naming the role and RPC.
//! A caller past its rate limit is `RESOURCE_EXHAUSTED` with a `retry-after`
//! hint. The check costs a hash-map lookup of the path, one of the key id,
//! one SHA-256, one constant-time comparison and one token-bucket update.

use super::access_log::note_principal;
use crate::auth::rate::{RateLimit, RateLimiter};
use crate::auth::table::{self, Access};
use crate::auth::{AuthError, Authenticators, Credentials, Principal};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::Status;
use tower::{Layer, Service};

/// How the gate decides.
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// The authenticators asked, in order.
    pub authenticators: Authenticators,
    /// Authentication off: every request acts as [`Principal::insecure_dev`]
    /// (an administrator). Only for a private network or development.
    pub insecure_dev: bool,
    /// Health checks need no credentials.
    pub open_health: bool,
    /// Reflection needs no credentials.
    pub open_reflection: bool,
    /// Each principal's rate limit (open health and reflection calls have
    /// no principal and are not counted).
    pub rate_limit: RateLimit,
}

/// The authenticated caller of a request, put in its extensions by the gate.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Principal>);

/// The caller of a request that passed the gate.
///
/// # Errors
/// `UNAUTHENTICATED` if the request did not come through the gate (a wiring
/// fault: no handler is reachable any other way).
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Arc<Principal>, Status> {
    request
        .extensions()
        .get::<Caller>()
        .map(|c| c.0.clone())
        .ok_or_else(|| Status::from(AuthError::Unauthenticated))
}

/// The layer; see the module docs.
#[derive(Debug, Clone)]
pub struct GateLayer {
    settings: Arc<GateSettings>,
    dev: Arc<Principal>,
    limiter: Arc<RateLimiter>,
}

impl GateLayer {
    /// A gate deciding by `settings`.
    pub fn new(settings: GateSettings) -> Self {
        let limiter = Arc::new(RateLimiter::new(settings.rate_limit));
        Self {
            settings: Arc::new(settings),
            dev: Arc::new(Principal::insecure_dev()),
            limiter,
        }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service the layer wraps around the routes.
#[derive(Debug, Clone)]
pub struct Gate<S> {
    inner: S,
    layer: GateLayer,
}

impl GateLayer {
    /// Admits a request (returning its caller, `None` for an open health or
    /// reflection call) or refuses it.
    fn admit<B>(&self, request: &Request<B>) -> Result<Option<Arc<Principal>>, AuthError> {
        let settings = &self.settings;
        let path = request.uri().path();
        let access = table::access(path);
        let open = match access {
            Some(Access::Health) => settings.open_health,
            Some(Access::Reflection) => settings.open_reflection,
            _ => false,
        };
        if open {
            return Ok(None);
        }
        let principal = if settings.insecure_dev {
            self.dev.clone()
        } else {
            settings.authenticators.authenticate(&Credentials {
                headers: request.headers(),
                extensions: request.extensions(),
            })?
        };
        note_principal(request.extensions(), &principal.id);
        if !table::allows(path, principal.role) {
            return Err(AuthError::PermissionDenied {
                role: principal.role,
                rpc: path.trim_start_matches('/').to_string(),
            });
        }
        if let Err(wait) = self.limiter.take(&principal.id, std::time::Instant::now()) {
            let limit = self.limiter.limit();
            return Err(AuthError::RateLimited {
                principal: principal.id.clone(),
                rate_per_second: limit.per_second,
                burst: limit.burst,
                retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
            });
        }
        Ok(Some(principal))
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Gate<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<GateBody<ResBody>>;
    type Error = S::Error;
    type Future = GateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.layer.admit(&request) {
            Ok(caller) => {
                if let Some(principal) = caller {
                    request.extensions_mut().insert(Caller(principal));
                }
                GateFuture::Admitted {
                    inner: self.inner.call(request),
                }
            }
            Err(refusal) => GateFuture::Refused {
                status: Some(Status::from(refusal)),
            },
        }
    }
}

pub use projections::{GateBody, GateFuture};
use projections::{GateBodyProjection, GateFutureProjection};

/// The pinned response types (in their own module: the projection types the
/// macro generates carry no docs).
#[allow(missing_docs)]
mod projections {
    use tonic::Status;

    pin_project_lite::pin_project! {
        /// The response future: the routes' answer, or the refusal.
        #[project = GateFutureProjection]
        pub enum GateFuture<F> {
            /// Admitted: the routes answer.
            Admitted {
                #[pin]
                inner: F,
            },
            /// Refused before the routes.
            Refused {
                status: Option<Status>,
            },
        }
    }

    pin_project_lite::pin_project! {
        /// The response body: the routes' body, or none for a refusal (its
        /// status travels in the headers, trailers-only).
        #[project = GateBodyProjection]
        pub enum GateBody<B> {
            /// The routes' body.
            Inner {
                #[pin]
                body: B,
            },
            /// A refusal's empty body.
            Empty,
        }
    }
}

impl<F, ResBody, E> Future for GateFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<GateBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GateFutureProjection::Admitted { inner } => inner
                .poll(cx)
                .map_ok(|response| response.map(|body| GateBody::Inner { body })),
            GateFutureProjection::Refused { status } => {
                let status = status
                    .take()
                    .unwrap_or_else(|| Status::internal("gate polled after it answered"));
                let (parts, ()) = status.into_http::<()>().into_parts();
                Poll::Ready(Ok(Response::from_parts(parts, GateBody::Empty)))
            }
        }
    }
}

impl<B: Body> Body for GateBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project() {
            GateBodyProjection::Inner { body } => body.poll_frame(cx),
            GateBodyProjection::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GateBody::Inner { body } => body.is_end_stream(),
            GateBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GateBody::Inner { body } => body.size_hint(),
            GateBody::Empty => SizeHint::with_exact(0),
        }
    }
}
