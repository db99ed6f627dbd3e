//! The `adamant` crate's integration tests as one binary: each file of this folder is a module.
//! One binary links the whole server once, where a binary per file linked it 22 times (about
//! 130 MB of disk and a link each).

mod common;

mod bad_input;
mod device;
mod device_keys;
mod eve;
mod events;
mod gc;
mod keys;
mod kube_rs;
mod kubectl;
mod metrics;
mod oidc;
mod python;
mod rbac;
mod serve;
mod server_side_apply;
mod serviceaccounts;
mod telemetry;
mod tidy;
mod tokens;
mod verbs;
mod walkthrough;
mod webhooks;
