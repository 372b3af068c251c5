//! CPU linear layers over float weights straight from the checkpoint's bytes:
//! `y[T, out] = x[T, in] · W[out, in]^T` with W in f16, bf16 or f32 as stored.
//!
//! The weight is never widened whole. Its rows arrive in blocks (borrowed from the memory
//! map where the reader can lend them); each block is cut into tasks of [`ROWS_PER_TASK`]
//! rows that run on the rayon pool. A task widens its rows to f32 into a buffer its thread
//! keeps for the whole run (no fresh pages, so no page-fault system time), then multiplies
//! with the `gemm` crate's f32 kernels while the rows are still in cache, writing its own
//! columns of `y`. Every output is one row's dot product accumulated in f32 from the exact
//! f32 value of each weight, like multiplying by the widened matrix.

use std::cell::RefCell;

use half::slice::HalfFloatSliceExt;
use llama_ggml::DType;
use rayon::prelude::*;

/// Weight rows one task widens and multiplies: 64 rows of a 4096-wide matrix are 1 MiB of
/// f32, which stays in the core's L2 cache while the GEMM reads it.
const ROWS_PER_TASK: usize = 64;

thread_local! {
    /// The widened rows of the task running on this thread, reused by every task.
    static WIDE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A pointer to `y` shared by tasks that write disjoint columns.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every task writes only its own columns of `y` (see `rows_into`).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The pointer (a method, so closures capture the whole `Send + Sync` wrapper).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// Widen little-endian `dtype` bytes (whole elements) into `out`.
fn widen(dtype: DType, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        DType::F16 => match bytemuck::try_cast_slice::<u8, half::f16>(bytes) {
            Ok(h) if cfg!(target_endian = "little") => h.convert_to_f32_slice(out),
            _ => out
                .iter_mut()
                .zip(bytes.chunks_exact(2))
                .for_each(|(x, c)| *x = half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
        },
        DType::BF16 => match bytemuck::try_cast_slice::<u8, half::bf16>(bytes) {
            Ok(h) if cfg!(target_endian = "little") => h.convert_to_f32_slice(out),
            _ => out
                .iter_mut()
                .zip(bytes.chunks_exact(2))
                .for_each(|(x, c)| *x = half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        },
        _ => out
            .iter_mut()
            .zip(bytes.chunks_exact(4))
            .for_each(|(x, c)| *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    }
}

/// Whether [`rows_into`] computes with this dtype.
pub(crate) fn supported(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16 | DType::F32)
}

/// `y[:, row0 .. row0 + n] = x · block^T` for a block of `n` whole rows of W (`bytes`,
/// `k` elements per row): `x` is `[t, k]` row-major, `y` is `[t, n_out]` row-major.
///
/// Callers guarantee `dtype` is [`supported`], `bytes` holds whole rows of `k` elements,
/// `x.len()` is a multiple of `k`, `y.len() == t * n_out` and `row0 + n <= n_out`;
/// violations panic before any write.
pub(crate) fn rows_into(
    x: &[f32],
    k: usize,
    dtype: DType,
    bytes: &[u8],
    row0: usize,
    y: &mut [f32],
    n_out: usize,
) {
    let es = dtype.block_bytes();
    let row_bytes = k * es;
    assert!(supported(dtype) && row_bytes > 0 && bytes.len().is_multiple_of(row_bytes));
    assert!(x.len().is_multiple_of(k));
    let t = x.len() / k;
    let n = bytes.len() / row_bytes;
    assert!(y.len() == t * n_out && row0 + n <= n_out);
    if t == 0 || n == 0 {
        return;
    }
    let out = Out(y.as_mut_ptr());
    bytes
        .par_chunks(ROWS_PER_TASK * row_bytes)
        .enumerate()
        .for_each(|(i, chunk)| {
            let rows = chunk.len() / row_bytes;
            let col0 = row0 + i * ROWS_PER_TASK;
            WIDE.with(|wide| {
                let mut wide = wide.borrow_mut();
                if wide.len() < rows * k {
                    wide.resize(rows * k, 0.0);
                }
                let w = &mut wide[..rows * k];
                widen(dtype, chunk, w);
                // SAFETY: lhs `x` is t x k (row stride k), rhs is the k x rows transpose of
                // `w` (element (kk, j) at j * k + kk), dst is the t x rows window of `y`
                // starting at column col0 with row stride n_out; col0 + rows <= n_out was
                // asserted above, and no other task writes these columns.
                unsafe {
                    gemm::gemm(
                        t,
                        rows,
                        k,
                        out.ptr().add(col0),
                        1,
                        n_out as isize,
                        false,
                        x.as_ptr(),
                        1,
                        k as isize,
                        w.as_ptr(),
                        k as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            });
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], t: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0f32; t * n];
        for i in 0..t {
            for j in 0..n {
                y[i * n + j] = (0..k)
                    .map(|kk| x[i * k + kk] as f64 * w[j * k + kk] as f64)
                    .sum::<f64>() as f32;
            }
        }
        y
    }

    #[test]
    fn blocks_of_rows_give_the_product_with_the_widened_matrix() {
        let (t, k, n) = (5usize, 37usize, 150usize);
        let x: Vec<f32> = (0..t * k)
            .map(|i| ((i * 7919) % 97) as f32 / 50.0 - 1.0)
            .collect();
        let w32: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104729) % 89) as f32 / 40.0 - 1.1)
            .collect();
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let bytes: Vec<u8> = match dtype {
                DType::F16 => w32
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect(),
                DType::BF16 => w32
                    .iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect(),
                _ => w32.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            let wide = llama_ggml::cast::to_f32(dtype, &bytes).unwrap();
            let want = naive(&x, t, k, &wide, n);
            // Two uneven blocks, the second starting at an odd byte offset of a copy.
            let mut y = vec![f32::NAN; t * n];
            let split = 101 * k * dtype.block_bytes();
            rows_into(&x, k, dtype, &bytes[..split], 0, &mut y, n);
            let mut odd = vec![0u8; 1];
            odd.extend_from_slice(&bytes[split..]);
            rows_into(&x, k, dtype, &odd[1..], 101, &mut y, n);
            for (a, b) in y.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{dtype}: {a} vs {b}"
                );
            }
        }
    }
}
