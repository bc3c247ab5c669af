//! What sits between the sockets and the routers: the accept loop (plain
//! HTTP/1.1 or TLS, with the limits that keep slow or half-open clients
//! from exhausting the server), the bearer-token guard and the `Host`
//! check against DNS rebinding.

mod accept;
mod auth;
mod head_cap;
mod host;
mod tls;
mod write_deadline;

pub use accept::{ConnectionLimits, serve};
pub use auth::{BearerToken, Guard, require_token};
pub use host::{HostPolicy, check_host};
pub use tls::{TlsError, TlsFiles, server_config};
