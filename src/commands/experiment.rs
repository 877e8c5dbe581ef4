//! `gpubound experiment`: Figures 1 and 2 and the coverage study.

use crate::cli::ExperimentCommand;

pub fn run(_cmd: ExperimentCommand) -> anyhow::Result<u8> {
    anyhow::bail!("not yet")
}
