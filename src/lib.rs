#![doc = include_str!("../ARCHITECTURE.md")]
#![warn(missing_docs)]

pub mod audit;
pub mod capacity;
pub mod capture;
pub mod check;
pub mod cli;
pub mod compare;
pub mod config;
pub mod engine;
pub mod forwarded_copies;
pub mod link;
pub mod output_file;
pub mod replay;
pub mod report;
pub mod time;
pub mod wire;
