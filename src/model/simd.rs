//! Which vector instructions the CPU paths use. Each kernel with explicit
//! vectors (the normal tail's lanes, the posterior's weights, the scan of a
//! step) also has a narrower twin that computes the same bits; the widest
//! the CPU has is used, or a narrower one named by `GPUBOUND_SIMD`
//! (`scalar`, `avx2`, `avx512`, `auto`). That is how the paths a CPU without
//! AVX-512 runs are tested on one with it (tests/simd_paths.rs), and how a
//! slower path can be timed; results do not depend on it.

use std::sync::OnceLock;

/// The environment variable that narrows the vector instructions.
pub const ENV: &str = "GPUBOUND_SIMD";

/// Vector instruction sets, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    Scalar,
    Avx2,
    Avx512,
}

impl SimdLevel {
    /// The widest this CPU has.
    pub fn detected() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return SimdLevel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Scalar
    }

    /// A value of `GPUBOUND_SIMD`: `None` for `auto` (the widest).
    pub fn parse(value: &str) -> Result<Option<SimdLevel>, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            "scalar" => Ok(Some(SimdLevel::Scalar)),
            "avx2" => Ok(Some(SimdLevel::Avx2)),
            "avx512" => Ok(Some(SimdLevel::Avx512)),
            _ => Err(format!(
                "{ENV}={value:?}: expected auto, scalar, avx2 or avx512"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }
}

/// The level `GPUBOUND_SIMD` asks for (the widest when unset), never wider
/// than the CPU has: the `unsafe` vector paths rely on that.
pub fn level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let detected = SimdLevel::detected();
        let asked = std::env::var(ENV)
            .ok()
            .and_then(|v| SimdLevel::parse(&v).ok().flatten());
        asked.map_or(detected, |a| a.min(detected))
    })
}

/// `GPUBOUND_SIMD`'s value checked, for a program's start: an unknown value
/// is an error there rather than silently the widest.
pub fn check_env() -> Result<(), String> {
    match std::env::var(ENV) {
        Ok(v) => SimdLevel::parse(&v).map(|_| ()),
        Err(std::env::VarError::NotPresent) => Ok(()),
        Err(std::env::VarError::NotUnicode(v)) => Err(format!("{ENV}={v:?}: not UTF-8")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_unknown_ones_are_refused() {
        assert_eq!(SimdLevel::parse("auto"), Ok(None));
        assert_eq!(SimdLevel::parse(" AVX2 "), Ok(Some(SimdLevel::Avx2)));
        assert_eq!(SimdLevel::parse("scalar"), Ok(Some(SimdLevel::Scalar)));
        assert_eq!(SimdLevel::parse("avx512"), Ok(Some(SimdLevel::Avx512)));
        let e = SimdLevel::parse("sse4").unwrap_err();
        assert!(e.contains("GPUBOUND_SIMD") && e.contains("sse4"), "{e}");
        assert!(level() <= SimdLevel::detected());
    }
}
