//! The EVE device API v2 wire format: the protobuf messages devices and controllers exchange
//! (from Adamant's own `.proto` files under `proto/`, compiled at build time with protox), and
//! the signed `AuthContainer` envelope with EVE's two certificate-hash rules. Only the
//! device-API crates know protobuf.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `org.lfedge.eve.common`: hashes, ciphers, IP specifications.
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.common.rs"));
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.common.serde.rs"));
}
/// `org.lfedge.eve.auth`: the envelope.
pub mod auth {
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.auth.rs"));
}
/// `org.lfedge.eve.certs`: controller and device certificates.
pub mod certs {
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.certs.rs"));
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.certs.serde.rs"));
}
/// `org.lfedge.eve.register`: registration.
pub mod register {
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.register.rs"));
}
/// `org.lfedge.eve.uuid`: the UUID request.
pub mod uuid {
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.uuid.rs"));
}
/// `org.lfedge.eve.attest`: attestation.
pub mod attest {
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.attest.rs"));
}
/// `org.lfedge.eve.config`: the device configuration.
pub mod config {
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.config.rs"));
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.config.serde.rs"));
}
/// `org.lfedge.eve.info`: what devices report.
pub mod info {
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.info.rs"));
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.info.serde.rs"));
}
/// Metrics, logs, flow logs, hardware health: the fields Adamant reads (metrics and flow logs
/// are kept as sent).
pub mod telemetry {
    include!(concat!(env!("OUT_DIR"), "/org.lfedge.eve.telemetry.rs"));
    include!(concat!(
        env!("OUT_DIR"),
        "/org.lfedge.eve.telemetry.serde.rs"
    ));
}

pub mod envelope;
pub mod newlogs;

pub use prost::{DecodeError, Message};
