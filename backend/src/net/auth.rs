//! Optional bearer tokens: one for ingest, one for queries. A request to a
//! guarded path without `Authorization: Bearer <token>` gets 401. Tokens
//! are compared in constant time; health endpoints stay open.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// A configured token. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(Arc<str>);

impl BearerToken {
    pub fn new(token: &str) -> Self {
        Self(token.into())
    }

    /// Whether an `Authorization` header value carries this token.
    pub(crate) fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(presented) = strip_bearer(value) else {
            return false;
        };
        presented.ct_eq(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// `Bearer <token>`, the scheme matched without regard to case (RFC 7235).
fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// Which requests a token guards.
#[derive(Debug, Clone)]
pub struct Guard {
    pub token: BearerToken,
    /// Guards every path when `None`, else only paths with these prefixes.
    pub prefixes: Option<&'static [&'static str]>,
}

impl Guard {
    fn guards(&self, path: &str) -> bool {
        self.prefixes
            .is_none_or(|prefixes| prefixes.iter().any(|p| path.starts_with(p)))
    }
}

/// Middleware: 401 with `WWW-Authenticate: Bearer` unless the request
/// carries the token or its path is not guarded.
pub async fn require_token(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    if !guard.guards(request.uri().path()) || guard.token.admits(authorization) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong bearer token\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_the_exact_token_with_the_bearer_scheme() {
        let token = BearerToken::new("s3cret");
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(token.admits(Some(b"bearer s3cret ")));
        assert!(!token.admits(None));
        assert!(!token.admits(Some(b"s3cret")));
        assert!(!token.admits(Some(b"Basic s3cret")));
        assert!(!token.admits(Some(b"Bearer s3cre")));
        assert!(!token.admits(Some(b"Bearer s3cret2")));
        assert!(!token.admits(Some(b"Bearer ")));
    }

    #[test]
    fn prefixes_limit_what_is_guarded() {
        let token = BearerToken::new("t");
        let all = Guard {
            token: token.clone(),
            prefixes: None,
        };
        assert!(all.guards("/v1/traces"));
        let api = Guard {
            token,
            prefixes: Some(&["/api/", "/metrics"]),
        };
        assert!(api.guards("/api/services"));
        assert!(api.guards("/metrics"));
        assert!(!api.guards("/healthz"));
        assert!(!api.guards("/"));
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", BearerToken::new("s3cret")).contains("s3cret"));
    }
}
