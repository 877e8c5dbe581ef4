//! The work behind each subcommand.

pub mod audit;
pub mod bench;
pub mod convert;
pub mod experiment;
pub mod sampler;
pub mod simulate;

use crate::cli::{Cli, Command};

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    crate::model::simd::check_env().map_err(crate::Error::Setting)?;
    match cli.command {
        Command::Audit(args) => audit::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Experiment(cmd) => experiment::run(cmd),
        Command::Convert(args) => convert::run(args),
        Command::Sampler(cmd) => sampler::run(cmd),
    }
}
