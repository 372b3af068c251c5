//! Where the forward pass runs: [`Device`] names a CPU or a CUDA GPU; the backend's own
//! device handle is created from it inside the crate (one per GPU, reused, so tensors of
//! one pass always share it).

use crate::error::OrCompute;
use std::sync::{Mutex, OnceLock};

use crate::error::InferError;

/// Whether this build can run on CUDA (`--features cuda`).
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// A compute device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU, on all threads of the rayon pool (`RAYON_NUM_THREADS`).
    Cpu,
    /// CUDA GPU by ordinal.
    Cuda(usize),
}

/// A device by name: `cpu`, `cuda` (GPU 0) or `cuda:N`. Asking for CUDA in a CPU-only
/// build is [`InferError::CudaNotBuilt`]; a GPU that cannot be opened is an error here,
/// before any weight is read.
pub fn device(name: &str) -> Result<Device, InferError> {
    let name = name.trim().to_ascii_lowercase();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match name.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| InferError::UnknownDevice(name.clone()))?,
        None => return Err(InferError::UnknownDevice(name)),
    };
    if !CUDA_BUILT {
        return Err(InferError::CudaNotBuilt);
    }
    let d = Device::Cuda(ordinal);
    d.backend()?;
    Ok(d)
}

impl Device {
    /// The backend's handle for this device (created once per GPU).
    pub(crate) fn backend(&self) -> Result<candle_core::Device, InferError> {
        static CUDA: OnceLock<Mutex<Vec<(usize, candle_core::Device)>>> = OnceLock::new();
        match *self {
            Device::Cpu => Ok(candle_core::Device::Cpu),
            Device::Cuda(ordinal) => {
                if !CUDA_BUILT {
                    return Err(InferError::CudaNotBuilt);
                }
                let mut opened = CUDA
                    .get_or_init(Default::default)
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if let Some((_, d)) = opened.iter().find(|(o, _)| *o == ordinal) {
                    return Ok(d.clone());
                }
                let d = candle_core::Device::new_cuda(ordinal).compute()?;
                opened.push((ordinal, d.clone()));
                Ok(d)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_cuda_is_refused_without_the_feature() {
        assert_eq!(device(" CPU ").unwrap(), Device::Cpu);
        assert!(matches!(device("tpu"), Err(InferError::UnknownDevice(_))));
        assert!(matches!(
            device("cuda:x"),
            Err(InferError::UnknownDevice(_))
        ));
        if !CUDA_BUILT {
            assert!(matches!(device("cuda:1"), Err(InferError::CudaNotBuilt)));
        }
    }
}
