//! Float32 `.npy` files (NumPy format 1.0/2.0,
//! <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>): the logits
//! matrices `llama-tool logits -o` writes and the reference fixtures the tests read.

use std::path::{Path, PathBuf};

/// Why an `.npy` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// OS error.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        error: std::io::Error,
    },
    /// Not a little-endian float32 C-order array.
    #[error("{}: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        problem: NpyProblem,
    },
}

/// What is wrong with an `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyProblem {
    /// Too short, or not starting with `\x93NUMPY`.
    #[error("not an .npy file (bad magic)")]
    Magic,
    /// A format version other than 1, 2 or 3 (or a 2/3 header cut short).
    #[error("unsupported .npy version")]
    Version,
    /// The header is longer than the file.
    #[error("header truncated")]
    HeaderTruncated,
    /// The header is not UTF-8.
    #[error("header is not text")]
    HeaderNotText,
    /// The dtype is not `<f4`.
    #[error("dtype is not little-endian float32 ('<f4')")]
    Dtype,
    /// A Fortran-order array.
    #[error("Fortran-order arrays are not supported")]
    FortranOrder,
    /// The header has no `'shape': (...)`.
    #[error("no shape in header")]
    NoShape,
    /// A shape entry that is not a number.
    #[error("bad shape")]
    BadShape,
    /// The element count overflows.
    #[error("shape overflows")]
    ShapeOverflow,
    /// The data is not as long as the shape needs.
    #[error("data holds {bytes} bytes, shape {shape:?} needs {needed}")]
    DataLength {
        /// Bytes after the header.
        bytes: usize,
        /// The shape.
        shape: Vec<usize>,
        /// Bytes the shape needs (saturated).
        needed: usize,
    },
}

/// Header + data of a C-order little-endian float32 array of `shape`.
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' padded to a multiple of 64.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Parse a float32 `.npy`: `(shape, values)`.
pub fn decode_f32(path: &Path, b: &[u8]) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    let bad = |problem: NpyProblem| NpyError::Format {
        path: path.to_path_buf(),
        problem,
    };
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(bad(NpyProblem::Magic));
    }
    let (hlen, hstart) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10usize),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        _ => return Err(bad(NpyProblem::Version)),
    };
    let header = b
        .get(hstart..hstart.saturating_add(hlen))
        .ok_or_else(|| bad(NpyProblem::HeaderTruncated))?;
    let header = std::str::from_utf8(header).map_err(|_| bad(NpyProblem::HeaderNotText))?;
    if !header.contains("'descr': '<f4'") {
        return Err(bad(NpyProblem::Dtype));
    }
    if !header.contains("'fortran_order': False") {
        return Err(bad(NpyProblem::FortranOrder));
    }
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(NpyProblem::NoShape))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(NpyProblem::BadShape)))
        .collect::<Result<Vec<_>, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(NpyProblem::ShapeOverflow))?;
    let data = &b[hstart + hlen..];
    if Some(data.len()) != n.checked_mul(4) {
        return Err(bad(NpyProblem::DataLength {
            bytes: data.len(),
            shape,
            needed: n.saturating_mul(4),
        }));
    }
    let values = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((shape, values))
}

/// Read a float32 `.npy` from disk.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    let b = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        error: source,
    })?;
    decode_f32(path, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trips_with_64_byte_aligned_header() {
        let data: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
        let b = encode_f32(&[2, 3], &data);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let (shape, back) = decode_f32(Path::new("x.npy"), &b).unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(back, data);
        assert!(decode_f32(Path::new("x.npy"), &b[..b.len() - 1]).is_err());
    }
}
