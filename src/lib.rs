#![doc = include_str!("../ARCHITECTURE.md")]
#![warn(missing_docs)]

pub mod capture;
pub mod engine;
pub mod link;
pub mod time;
pub mod wire;
