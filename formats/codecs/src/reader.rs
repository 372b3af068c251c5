//! One reader interface over the three tensor containers.
//!
//! [`TensorReader`] is what a torch `.pth` file ([`PthFile`]), a safetensors file or folder
//! ([`SafetensorsFolder`]) and a GGUF file ([`GgufFile`]) have in common: list the tensors
//! as stored, view one as a [`TensorView`] into the memory map, and give its pages back once
//! it has been consumed. The model layer (`llama-formats`' `Checkpoint`) holds one reader per
//! shard and never matches on the container again, so a new container is one implementation
//! of this trait.

use std::path::{Path, PathBuf};

use crate::gguf::{GgufError, GgufFile};
use crate::pth::{PthError, PthFile};
use crate::safetensors::{SafetensorsError, SafetensorsFolder};
use crate::tensor::{TensorInfo, TensorView};

/// Why a reader could not give a tensor (the container's own error).
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// A torch `.pth` file.
    #[error(transparent)]
    Pth(#[from] PthError),
    /// A safetensors file or folder.
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    /// A GGUF file.
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// A container of named tensors in a memory map: list, view, release.
pub trait TensorReader: Send + Sync {
    /// The container's format, for messages: `pth`, `safetensors` or `gguf`.
    fn format(&self) -> &'static str;

    /// The file (or folder) it reads.
    fn path(&self) -> &Path;

    /// The files holding its tensors (the shards of a safetensors folder).
    fn files(&self) -> Vec<PathBuf> {
        vec![self.path().to_path_buf()]
    }

    /// Every tensor as stored, in the container's order.
    fn tensor_infos(&self) -> Vec<TensorInfo>;

    /// Whether it holds a tensor of this stored name.
    fn contains(&self, name: &str) -> bool;

    /// A view of the tensor stored as `name`; `None` when it holds no such tensor.
    fn view_tensor(&self, name: &str) -> Option<Result<TensorView<'_>, ReaderError>>;

    /// Give back the memory-mapped pages of tensor `name` once consumed (best effort; a
    /// name it does not hold is ignored).
    fn release_tensor(&self, name: &str);

    /// The GGUF file behind this reader, when it is one (its metadata holds the model's
    /// hyper-parameters and vocabulary).
    fn as_gguf(&self) -> Option<&GgufFile> {
        None
    }
}

impl TensorReader for PthFile {
    fn format(&self) -> &'static str {
        "pth"
    }
    fn path(&self) -> &Path {
        PthFile::path(self)
    }
    fn tensor_infos(&self) -> Vec<TensorInfo> {
        self.tensors().iter().map(|t| t.info.clone()).collect()
    }
    fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    fn view_tensor(&self, name: &str) -> Option<Result<TensorView<'_>, ReaderError>> {
        self.get(name)
            .map(|t| self.view(t).map_err(ReaderError::from))
    }
    fn release_tensor(&self, name: &str) {
        if let Some(t) = self.get(name) {
            self.release(t);
        }
    }
}

impl TensorReader for SafetensorsFolder {
    fn format(&self) -> &'static str {
        "safetensors"
    }
    fn path(&self) -> &Path {
        SafetensorsFolder::path(self)
    }
    fn files(&self) -> Vec<PathBuf> {
        self.shards()
            .iter()
            .map(|f| f.path().to_path_buf())
            .collect()
    }
    fn tensor_infos(&self) -> Vec<TensorInfo> {
        self.tensors()
    }
    fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    fn view_tensor(&self, name: &str) -> Option<Result<TensorView<'_>, ReaderError>> {
        self.contains(name)
            .then(|| self.view(name).map_err(ReaderError::from))
    }
    fn release_tensor(&self, name: &str) {
        self.release(name);
    }
}

impl TensorReader for GgufFile {
    fn format(&self) -> &'static str {
        "gguf"
    }
    fn path(&self) -> &Path {
        GgufFile::path(self)
    }
    fn tensor_infos(&self) -> Vec<TensorInfo> {
        self.tensors().iter().map(|t| t.info.clone()).collect()
    }
    fn contains(&self, name: &str) -> bool {
        self.get_tensor(name).is_some()
    }
    fn view_tensor(&self, name: &str) -> Option<Result<TensorView<'_>, ReaderError>> {
        self.get_tensor(name)
            .map(|t| self.view(t).map_err(ReaderError::from))
    }
    fn release_tensor(&self, name: &str) {
        if let Some(t) = self.get_tensor(name) {
            self.release(t);
        }
    }
    fn as_gguf(&self) -> Option<&GgufFile> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;

    /// The three containers answer the same questions the same way for the same tensors.
    #[test]
    fn the_three_readers_agree_through_the_trait() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..24u8).collect();

        let info = TensorInfo {
            name: "a.weight".into(),
            dtype: DType::F32,
            shape: vec![2, 3],
        };
        let st = dir.path().join("m.safetensors");
        let mut w = crate::safetensors::SafetensorsWriter::new(
            std::fs::File::create(&st).unwrap(),
            vec![info.clone()],
            None,
        )
        .unwrap();
        w.write_tensor("a.weight", &data).unwrap();
        w.finish().unwrap();
        let gg = dir.path().join("m.gguf");
        let mut w = crate::gguf::GgufWriter::new(
            std::fs::File::create(&gg).unwrap(),
            vec![],
            vec![info.clone()],
            32,
        )
        .unwrap();
        w.write_tensor("a.weight", &data).unwrap();
        w.finish().unwrap();
        let pt = dir.path().join("m.pth");
        let mut w =
            crate::pth::PthWriter::new(std::fs::File::create(&pt).unwrap(), "m", vec![info])
                .unwrap();
        w.write_tensor("a.weight", &data).unwrap();
        w.finish().unwrap();

        let readers: Vec<Box<dyn TensorReader>> = vec![
            Box::new(SafetensorsFolder::open(&st).unwrap()),
            Box::new(GgufFile::open(&gg).unwrap()),
            Box::new(PthFile::open(&pt).unwrap()),
        ];
        for r in &readers {
            let infos = r.tensor_infos();
            assert_eq!(infos.len(), 1, "{}", r.format());
            assert_eq!(infos[0].name, "a.weight");
            assert_eq!(infos[0].dtype, DType::F32);
            assert!(r.contains("a.weight") && !r.contains("b.weight"));
            assert!(r.view_tensor("b.weight").is_none());
            let v = r.view_tensor("a.weight").unwrap().unwrap();
            assert_eq!(&*v.data(), &data[..], "{}", r.format());
            r.release_tensor("a.weight");
            r.release_tensor("b.weight");
            assert_eq!(r.as_gguf().is_some(), r.format() == "gguf");
        }
    }
}
