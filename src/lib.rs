//! gpubound: audits agent action logs with the run-time harm bounds of Bengio
//! et al., "Can a Bayesian Oracle Prevent Harm from an Agent?" (UAI 2025).
//!
//! Data flows one way:
//! `log` (reader) → `model` → `engine` (cpu | gpu) → `posterior` & `estimators` → `report`.

pub mod api;
pub mod audit;
pub mod bench;
pub mod engine;
pub mod error;
pub mod estimators;
pub mod guardrail;
pub mod log;
pub mod model;
pub mod posterior;
pub mod sampler;

pub use error::{Error, Result};
pub mod cli;
pub mod commands;
pub mod progress;
pub mod report;
pub mod sim;
