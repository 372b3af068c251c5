//! Times the quantization kernels on one thread (not a test): `cargo run --release -p
//! llama-ggml --example quant_kernels [MVALUES]`. Prints Mweights/s per type.
use std::time::Instant;

use llama_ggml::dtype::DType;
use llama_ggml::quant::{quantize_into, quantize_raw_into};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
        * (1 << 20);
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let x: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.05
        })
        .collect();
    let mut raw = Vec::with_capacity(n * 2);
    for v in &x {
        raw.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut out = Vec::new();
    pool.install(|| {
        for t in [
            DType::Q8_0,
            DType::Q4_0,
            DType::Q4_K,
            DType::Q5_K,
            DType::Q6_K,
            DType::Q2_K,
            DType::Q3_K,
        ] {
            let t0 = Instant::now();
            quantize_into(t, &x, 4096, &mut out).unwrap();
            let a = t0.elapsed().as_secs_f64();
            let t0 = Instant::now();
            quantize_raw_into(DType::F16, &raw, t, 4096, &mut out).unwrap();
            let b = t0.elapsed().as_secs_f64();
            let h = out
                .iter()
                .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(b as u64));
            println!(
                "{t:>5}: f32 {:7.1} Mw/s   f16 {:7.1} Mw/s   hash {h:016x}",
                n as f64 / a / 1e6,
                n as f64 / b / 1e6
            );
        }
    });
}
