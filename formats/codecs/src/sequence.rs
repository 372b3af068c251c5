//! The bookkeeping every streaming tensor writer shares (GGUF, safetensors, torch zip):
//! tensors are declared up front, then their data must arrive in that order, one tensor at
//! a time, each with exactly the bytes its dtype and shape need. [`TensorSequence`] checks
//! each `start_tensor` / `write_chunk` / `end_tensor` / `finish` call against the
//! declaration; the writers only put bytes where their format wants them.

use crate::tensor::TensorInfo;

/// A streaming writer was called out of step with its declared tensors.
#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    /// `start_tensor` named a tensor other than the next declared one.
    #[error("tensor {got:?} written out of order: expected {}", expected.as_deref().unwrap_or("no more tensors"))]
    OutOfOrder {
        /// What was expected.
        expected: Option<String>,
        /// What was found.
        got: String,
    },
    /// A tensor received more or fewer bytes than its dtype and shape need.
    #[error("tensor {name:?}: expected {expected} bytes of data, got {got}")]
    WrongSize {
        /// The name, as written in the file.
        name: String,
        /// What was expected.
        expected: u64,
        /// What was found.
        got: u64,
    },
    /// `write_chunk` or `end_tensor` without `start_tensor`.
    #[error("no tensor started")]
    NoTensorStarted,
    /// `start_tensor` or `finish` while a tensor is still open.
    #[error("tensor {0:?} was not ended")]
    TensorNotEnded(String),
    /// `finish` before every declared tensor was written.
    #[error("{remaining} declared tensors were not written, starting with {next:?}")]
    Unwritten {
        /// The next.
        next: String,
        /// The remaining.
        remaining: usize,
    },
}

/// The declared tensors, their data sizes, and how far the data has come.
#[derive(Debug)]
pub(crate) struct TensorSequence {
    tensors: Vec<TensorInfo>,
    /// Data bytes of each tensor.
    sizes: Vec<u64>,
    /// Index of the next tensor to start.
    next: usize,
    /// The tensor being written and its bytes so far.
    current: Option<(usize, u64)>,
}

impl TensorSequence {
    /// Expect `tensors` in this order, tensor `i` holding `sizes[i]` bytes of data.
    ///
    /// # Panics
    /// If the two lengths differ (a bug in the writer, not in any input).
    pub fn new(tensors: Vec<TensorInfo>, sizes: Vec<u64>) -> Self {
        assert_eq!(tensors.len(), sizes.len(), "one size per declared tensor");
        TensorSequence {
            tensors,
            sizes,
            next: 0,
            current: None,
        }
    }

    /// The data size of declared tensor `index`.
    pub fn size(&self, index: usize) -> u64 {
        self.sizes[index]
    }

    /// Begin `name`, which must be the next declared tensor and no tensor open; returns
    /// its index.
    pub fn start(&mut self, name: &str) -> Result<usize, SequenceError> {
        if let Some((i, _)) = self.current {
            return Err(SequenceError::TensorNotEnded(self.tensors[i].name.clone()));
        }
        match self.tensors.get(self.next) {
            Some(t) if t.name == name => {
                let index = self.next;
                self.current = Some((index, 0));
                self.next += 1;
                Ok(index)
            }
            expected => Err(SequenceError::OutOfOrder {
                expected: expected.map(|t| t.name.clone()),
                got: name.to_string(),
            }),
        }
    }

    /// Count `len` more bytes into the open tensor, refusing more than it holds; returns
    /// its index. Call before writing the bytes.
    pub fn chunk(&mut self, len: u64) -> Result<usize, SequenceError> {
        let Some((i, done)) = self.current.as_mut() else {
            return Err(SequenceError::NoTensorStarted);
        };
        let total = *done + len;
        if total > self.sizes[*i] {
            return Err(SequenceError::WrongSize {
                name: self.tensors[*i].name.clone(),
                expected: self.sizes[*i],
                got: total,
            });
        }
        *done = total;
        Ok(*i)
    }

    /// Close the open tensor if it received exactly its size; returns its index.
    pub fn end(&mut self) -> Result<usize, SequenceError> {
        let Some((i, done)) = self.current else {
            return Err(SequenceError::NoTensorStarted);
        };
        if done != self.sizes[i] {
            return Err(SequenceError::WrongSize {
                name: self.tensors[i].name.clone(),
                expected: self.sizes[i],
                got: done,
            });
        }
        self.current = None;
        Ok(i)
    }

    /// Check that every declared tensor was started and ended.
    pub fn finish(&self) -> Result<(), SequenceError> {
        if let Some((i, _)) = self.current {
            return Err(SequenceError::TensorNotEnded(self.tensors[i].name.clone()));
        }
        if let Some(t) = self.tensors.get(self.next) {
            return Err(SequenceError::Unwritten {
                next: t.name.clone(),
                remaining: self.tensors.len() - self.next,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;

    fn seq() -> TensorSequence {
        let info = |n: &str| TensorInfo {
            name: n.into(),
            dtype: DType::F16,
            shape: vec![2],
        };
        TensorSequence::new(vec![info("x"), info("y")], vec![4, 4])
    }

    #[test]
    fn sequence_follows_the_declaration() {
        let mut s = seq();
        assert!(matches!(s.chunk(1), Err(SequenceError::NoTensorStarted)));
        assert!(matches!(s.end(), Err(SequenceError::NoTensorStarted)));
        assert!(matches!(
            s.start("y"),
            Err(SequenceError::OutOfOrder { expected: Some(e), got }) if e == "x" && got == "y"
        ));
        assert_eq!(s.start("x").unwrap(), 0);
        assert!(matches!(s.start("y"), Err(SequenceError::TensorNotEnded(n)) if n == "x"));
        assert_eq!(s.chunk(3).unwrap(), 0);
        assert!(matches!(
            s.chunk(2),
            Err(SequenceError::WrongSize {
                expected: 4,
                got: 5,
                ..
            })
        ));
        assert!(matches!(
            s.end(),
            Err(SequenceError::WrongSize {
                expected: 4,
                got: 3,
                ..
            })
        ));
        assert!(matches!(s.finish(), Err(SequenceError::TensorNotEnded(n)) if n == "x"));
        s.chunk(1).unwrap();
        assert_eq!(s.end().unwrap(), 0);
        assert!(matches!(
            s.finish(),
            Err(SequenceError::Unwritten { remaining: 1, next }) if next == "y"
        ));
        assert_eq!(s.start("y").unwrap(), 1);
        s.chunk(4).unwrap();
        s.end().unwrap();
        assert!(matches!(
            s.start("z"),
            Err(SequenceError::OutOfOrder { expected: None, .. })
        ));
        s.finish().unwrap();
    }
}
