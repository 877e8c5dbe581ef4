//! The wgpu backend (in progress: see issue 3). Until it lands, asking for it
//! is an error and `auto` uses the CPU.

use super::{BackendInfo, Batch, Engine, PreparedBatch};
use crate::{Error, Result};

pub struct GpuEngine {
    info: BackendInfo,
}

impl GpuEngine {
    pub fn new() -> Result<Self> {
        Err(Error::Gpu("the GPU backend is not built yet".into()))
    }
}

impl Engine for GpuEngine {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn prepare<'a>(&'a self, _batch: &'a Batch<'a>) -> Result<Box<dyn PreparedBatch + 'a>> {
        Err(Error::Gpu("the GPU backend is not built yet".into()))
    }
}
