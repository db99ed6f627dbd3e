//! OpenID Connect authentication, as kube-apiserver's `--oidc-*` flags configure it: bearer
//! tokens that are ID tokens of one issuer authenticate as the user and groups their claims
//! name. The flags and their checks are [`config`]; from claims to a user, [`claims`]; the
//! issuer's keys (discovery, JWKS, the cache by `kid`, refetching), `keys`; the
//! [`TokenAuthenticator`](crate::auth::TokenAuthenticator) itself, [`authenticator`].

pub mod authenticator;
pub mod claims;
pub mod config;
mod keys;

pub use authenticator::{MAX_TOKEN, OidcAuthenticator, StartError};
pub use claims::ClaimMapping;
pub use config::{Config, ConfigError, Options};
