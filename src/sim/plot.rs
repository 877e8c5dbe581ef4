//! SVG figures of the experiments (plotters).

use std::path::Path;

use super::experiments::{Fig1Result, Fig2Result};
use crate::Result;

pub fn fig1_svg(_r: &Fig1Result, _path: &Path) -> Result<()> {
    Ok(())
}

pub fn fig2_svg(_r: &Fig2Result, _path: &Path) -> Result<()> {
    Ok(())
}
