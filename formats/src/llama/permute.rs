//! The rotary q/k permutation between Meta's interleaved layout (pairs `x[2i], x[2i+1]`)
//! and Hugging Face's half-split layout, exactly as transformers' converter does it:
//! `w.view(n_heads, rows / n_heads / 2, 2, cols).transpose(1, 2).reshape(rows, cols)`.
//!
//! It only reorders whole rows, so it works on any dtype (quantized rows included).

/// Output row `r` of the Meta -> HF permutation takes input row `source_row(r)`.
/// Within a head: HF row `j * half + i` = Meta row `2 * i + j`.
fn meta_row_for_hf_row(r: usize, head_dim: usize) -> usize {
    let (h, within) = (r / head_dim, r % head_dim);
    let half = head_dim / 2;
    let (j, i) = (within / half, within % half);
    h * head_dim + 2 * i + j
}

/// Reorder rows of a `[rows, row_bytes]` matrix: Meta -> HF when `to_hf`, else HF -> Meta.
/// `rows` must be a multiple of `n_heads` with an even head size.
pub fn permute_rows(data: &[u8], rows: usize, n_heads: usize, to_hf: bool) -> Option<Vec<u8>> {
    if rows == 0
        || n_heads == 0
        || !rows.is_multiple_of(n_heads)
        || !(rows / n_heads).is_multiple_of(2)
        || !data.len().is_multiple_of(rows)
    {
        return None;
    }
    let row_bytes = data.len() / rows;
    let head_dim = rows / n_heads;
    let mut out = vec![0u8; data.len()];
    for r in 0..rows {
        let m = meta_row_for_hf_row(r, head_dim);
        let (dst, src) = if to_hf { (r, m) } else { (m, r) };
        out[dst * row_bytes..(dst + 1) * row_bytes]
            .copy_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_transformers_view_transpose_reshape() {
        // 2 heads of size 4, one byte per row: Meta rows [0..8).
        let meta: Vec<u8> = (0..8).collect();
        let hf = permute_rows(&meta, 8, 2, true).unwrap();
        // view(2, 2, 2, 1).transpose(1, 2): head 0 rows [0,2,1,3], head 1 rows [4,6,5,7].
        assert_eq!(hf, vec![0, 2, 1, 3, 4, 6, 5, 7]);
        assert_eq!(permute_rows(&hf, 8, 2, false).unwrap(), meta);
    }

    #[test]
    fn inverse_round_trips_wide_rows() {
        let data: Vec<u8> = (0..=255).cycle().take(64 * 12).collect();
        let hf = permute_rows(&data, 64, 4, true).unwrap();
        assert_ne!(hf, data);
        assert_eq!(permute_rows(&hf, 64, 4, false).unwrap(), data);
        assert!(permute_rows(&data, 64, 3, true).is_none());
    }
}
