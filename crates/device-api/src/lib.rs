//! x
pub mod compose;
pub mod fleet;
pub mod pki;
