//! Adamant's Kubernetes-compatible API server: the generic half of the product, knowing nothing
//! of EVE. It serves the native kinds Adamant reuses and any CustomResourceDefinition over
//! HTTPS, with discovery, OpenAPI, every verb, watch streams and tables, on the
//! [`registry`]. Only this crate knows the Kubernetes wire format and HTTP.

pub mod admission;
mod apply;
pub mod auth;
pub mod catalog;
mod controllers;
pub mod coordination;
pub mod crd;
pub mod discovery;
pub mod events;
mod follow;
pub mod gc;
mod http;
pub mod inflight;
pub mod keys;
mod metered;
pub mod metrics;
pub use http::{RequestBody, ResponseBody};
pub mod native;
pub mod oidc;
pub mod openapi;
pub mod openapi_proto;
pub mod pki;
mod process;
pub mod protobuf;
mod rbac;
pub mod schema;
mod selector;
mod server;
pub mod serviceaccounts;
pub mod status;
pub mod strategic;
pub mod table;
pub mod tokens;
mod webhooks;
mod workqueue;

pub use server::{ApiServer, Config, SYSTEM_NAMESPACES, StartError, WEBHOOK_CLIENT_USER};
