//! `synth --shape` describes every released LLaMA size exactly (the e2e tests write the
//! tiny, 7B- and 65B-shaped models; the parameters of all five are checked here).

use llama_formats::llama::{KnownSize, TensorName};
use llama_formats::synth::{synth_meta_params, synth_params, SynthShape, SynthSpec};
use llama_ggml::DType;

fn spec(shape: SynthShape, layers: Option<u64>) -> SynthSpec {
    SynthSpec {
        shape,
        layers,
        mp: None,
        dtype: DType::F16,
        seed: 0,
        kv_heads: None,
        ffn_dim_multiplier: None,
    }
}

#[test]
fn every_released_size_is_reproduced_and_detected() {
    for k in KnownSize::ALL {
        let p = synth_params(&spec(SynthShape::Known(k), None));
        assert_eq!(p.known_size(), Some(k), "{}", k.name());
        assert_eq!(p.size_label(), k.name());
        let (dim, heads, layers, hidden) = k.shape();
        assert_eq!(
            (p.dim, p.n_heads, p.n_layers, p.hidden_dim, p.vocab_size),
            (dim, heads, layers, hidden, 32000)
        );
        assert_eq!(p.norm_eps, k.norm_eps());
        let m = synth_meta_params(&spec(SynthShape::Known(k), None));
        assert_eq!(
            (m.multiple_of, m.vocab_size),
            (256, -1),
            "params.json like the release"
        );
        // Thin variants keep every tensor's real shape.
        let thin = synth_params(&spec(SynthShape::Known(k), Some(2)));
        assert_eq!(
            thin.size_label(),
            format!("custom ({}-shaped, 2 of {layers} layers)", k.name())
        );
        for t in TensorName::all(2) {
            assert_eq!(
                t.expected_shape(&thin),
                t.expected_shape(&p),
                "{} {}",
                k.name(),
                t.meta()
            );
        }
    }
    assert_eq!(KnownSize::B65.norm_eps(), 1e-5);
    assert_eq!(KnownSize::B65.shards(), 8);
    let tiny = synth_params(&spec(SynthShape::Tiny, None));
    assert_eq!(tiny.size_label(), "custom");
    assert_eq!(
        (tiny.dim, tiny.hidden_dim, tiny.vocab_size),
        (256, 768, 512)
    );
}
