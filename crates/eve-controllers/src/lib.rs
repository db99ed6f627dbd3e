//! Adamant's EVE half: the admission rules of the EVE kinds, scheduling of applications over
//! devices, and the controllers that run it. It reaches objects only as a Kubernetes client
//! (kube-rs): in `adamant serve` that client talks to the in-process API server, in
//! `adamant controller` to any Kubernetes API server. It knows neither storage nor the API
//! server's internals.

pub mod admission;
pub mod events;
pub mod informers;
pub mod labels;
pub mod runtime;
pub mod scheduling;
pub mod webhook;
