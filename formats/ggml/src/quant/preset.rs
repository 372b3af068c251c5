//! llama.cpp's quantization presets (`llama-quantize` file types such as `Q4_K_M`) and its
//! per-tensor type choices for LLaMA models, as `llama_tensor_get_type` and
//! `tensor_type_fallback` in `src/llama-quant.cpp` make them
//! (<https://github.com/ggml-org/llama.cpp/blob/master/src/llama-quant.cpp>), without an
//! importance matrix and without overrides.
//!
//! llama.cpp walks the tensors in its loader's order (non-layer tensors by name, then
//! `blk.N.*` by layer and name, see `llama_cpp_order`) and counts `attn_v` / `ffn_down`
//! tensors as it goes; the planner does the same. [`plan_types`] is the one quantization
//! plan: `quantize` (a float GGUF in) and `convert --outtype` (any checkpoint in) both take
//! their tensor types from it.
#![deny(missing_docs)]

use crate::dtype::DType;

/// A `llama-quantize` file type: the type most tensors get and the rules for the others.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Q4_0 throughout.
    Q4_0,
    /// Q4_1 throughout.
    Q4_1,
    /// Q5_0 throughout.
    Q5_0,
    /// Q5_1 throughout.
    Q5_1,
    /// Q8_0 throughout.
    Q8_0,
    /// Mostly Q2_K (Q3_K/Q4_K for attention and FFN outputs).
    Q2_K,
    /// Q3_K, small.
    Q3_K_S,
    /// Q3_K, medium (Q4_K/Q5_K for chosen tensors).
    Q3_K_M,
    /// Q3_K, large (Q5_K for chosen tensors).
    Q3_K_L,
    /// Q4_K, small.
    Q4_K_S,
    /// Q4_K, medium (Q6_K for chosen `attn_v` / `ffn_down` layers).
    Q4_K_M,
    /// Q5_K, small.
    Q5_K_S,
    /// Q5_K, medium (Q6_K for chosen `attn_v` / `ffn_down` layers).
    Q5_K_M,
    /// Q6_K throughout.
    Q6_K,
    /// F16 (no quantization).
    F16,
    /// BF16 (no quantization).
    BF16,
    /// F32 (no quantization).
    F32,
}

/// Every preset, for help texts and tests.
pub(crate) const ALL_PRESETS: [Preset; 17] = [
    Preset::Q4_0,
    Preset::Q4_1,
    Preset::Q5_0,
    Preset::Q5_1,
    Preset::Q8_0,
    Preset::Q2_K,
    Preset::Q3_K_S,
    Preset::Q3_K_M,
    Preset::Q3_K_L,
    Preset::Q4_K_S,
    Preset::Q4_K_M,
    Preset::Q5_K_S,
    Preset::Q5_K_M,
    Preset::Q6_K,
    Preset::F16,
    Preset::BF16,
    Preset::F32,
];

impl Preset {
    /// The name as `llama-quantize` spells it.
    pub fn name(self) -> &'static str {
        use Preset::*;
        match self {
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q2_K => "Q2_K",
            Q3_K_S => "Q3_K_S",
            Q3_K_M => "Q3_K_M",
            Q3_K_L => "Q3_K_L",
            Q4_K_S => "Q4_K_S",
            Q4_K_M => "Q4_K_M",
            Q5_K_S => "Q5_K_S",
            Q5_K_M => "Q5_K_M",
            Q6_K => "Q6_K",
            F16 => "F16",
            BF16 => "BF16",
            F32 => "F32",
        }
    }

    /// Parse a name case-insensitively; `Q3_K`, `Q4_K`, `Q5_K` mean the `_M` presets, as in
    /// `llama-quantize`.
    pub fn from_name(s: &str) -> Option<Preset> {
        let alias = match s.to_ascii_uppercase().as_str() {
            "Q3_K" => Some(Preset::Q3_K_M),
            "Q4_K" => Some(Preset::Q4_K_M),
            "Q5_K" => Some(Preset::Q5_K_M),
            _ => None,
        };
        alias.or_else(|| {
            ALL_PRESETS
                .iter()
                .copied()
                .find(|p| p.name().eq_ignore_ascii_case(s))
        })
    }

    /// `general.file_type` (`enum llama_ftype`).
    pub fn file_type(self) -> u32 {
        use Preset::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q8_0 => 7,
            Q5_0 => 8,
            Q5_1 => 9,
            Q2_K => 10,
            Q3_K_S => 11,
            Q3_K_M => 12,
            Q3_K_L => 13,
            Q4_K_S => 14,
            Q4_K_M => 15,
            Q5_K_S => 16,
            Q5_K_M => 17,
            Q6_K => 18,
            BF16 => 32,
        }
    }

    /// The type most tensors get (`llama_ftype_get_default_type`).
    pub fn default_type(self) -> DType {
        use Preset::*;
        match self {
            Q4_0 => DType::Q4_0,
            Q4_1 => DType::Q4_1,
            Q5_0 => DType::Q5_0,
            Q5_1 => DType::Q5_1,
            Q8_0 => DType::Q8_0,
            Q2_K => DType::Q2_K,
            Q3_K_S | Q3_K_M | Q3_K_L => DType::Q3_K,
            Q4_K_S | Q4_K_M => DType::Q4_K,
            Q5_K_S | Q5_K_M => DType::Q5_K,
            Q6_K => DType::Q6_K,
            F16 => DType::F16,
            BF16 => DType::BF16,
            F32 => DType::F32,
        }
    }
}

/// What the type rules need to know about the model (`llama.*` metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelHints {
    /// `llama.block_count`.
    pub n_layer: usize,
    /// `llama.attention.head_count`.
    pub n_head: u32,
    /// `llama.attention.head_count_kv` (= n_head when absent).
    pub n_head_kv: u32,
    /// `llama.expert_count` (0 when absent).
    pub n_expert: u32,
    /// True when the model has no `output.weight` (token_embd doubles as output).
    pub tied_embeddings: bool,
}

impl ModelHints {
    fn n_gqa(&self) -> u32 {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }
    /// llama.cpp's `LLM_TYPE_70B` for LLaMA: 80 layers with grouped-query attention.
    fn is_70b(&self) -> bool {
        self.n_layer == 80 && self.n_head != self.n_head_kv
    }
}

/// The `blk.N.` layer number of a GGUF tensor name.
pub(crate) fn layer_of(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("blk.")?;
    let digits = rest.split('.').next()?;
    digits.parse().ok()
}

/// Sort GGUF tensor names into llama.cpp's loader order (`weight_name_comparer`): by layer
/// (non-layer tensors first), then by name.
pub fn llama_cpp_order<T, F: Fn(&T) -> &str>(items: &mut [T], name: F) {
    items.sort_by(|a, b| {
        let (na, nb) = (name(a), name(b));
        let la = layer_of(na).map_or(-1, |l| l as i64);
        let lb = layer_of(nb).map_or(-1, |l| l as i64);
        la.cmp(&lb).then_with(|| na.cmp(nb))
    });
}

/// Each tensor's output type as `llama-quantize` chooses it for `preset`: `tensors` (GGUF
/// name, numpy-order shape, source type; all of the model's quantizable tensors) are visited
/// in llama.cpp's loader order with its running counters, and the types are returned in the
/// order given, with the number of tensors whose row length forced a fallback type.
pub fn plan_types(
    preset: Preset,
    hints: ModelHints,
    tensors: &[(&str, &[u64], DType)],
) -> (Vec<DType>, usize) {
    let mut order: Vec<(&str, usize)> = tensors.iter().enumerate().map(|(i, t)| (t.0, i)).collect();
    llama_cpp_order(&mut order, |e| e.0);
    let mut planner = Planner::new(preset, hints, tensors.iter().map(|t| t.0));
    let mut types = vec![DType::F32; tensors.len()];
    for (_, i) in order {
        let (name, shape, src) = tensors[i];
        types[i] = planner.tensor_type(name, shape, src);
    }
    (types, planner.n_fallback)
}

/// Per-tensor type choice with llama.cpp's running counters. Feed it every tensor in
/// [`llama_cpp_order`].
#[derive(Debug, Clone)]
pub(crate) struct Planner {
    preset: Preset,
    hints: ModelHints,
    n_attention_wv: usize,
    i_attention_wv: usize,
    i_ffn_down: usize,
    /// Tensors whose row length forced a fallback type.
    pub(crate) n_fallback: usize,
}

impl Planner {
    /// A planner for a model whose tensors are named `names` (all of them).
    pub(crate) fn new<'a>(
        preset: Preset,
        mut hints: ModelHints,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut n_attention_wv = 0;
        hints.tied_embeddings = true;
        for n in names {
            if is_attn_v(category(n)) {
                n_attention_wv += 1;
            }
            if n == "output.weight" {
                hints.tied_embeddings = false;
            }
        }
        Planner {
            preset,
            hints,
            n_attention_wv,
            i_attention_wv: 0,
            i_ffn_down: 0,
            n_fallback: 0,
        }
    }

    /// The type of the next tensor (`shape` in numpy order, `src` its current type).
    pub(crate) fn tensor_type(&mut self, name: &str, shape: &[u64], src: DType) -> DType {
        let counters = Counters {
            i_attention_wv: self.i_attention_wv,
            n_attention_wv: self.n_attention_wv,
            i_ffn: self.i_ffn_down,
            n_ffn: self.hints.n_layer,
        };
        let (t, step) = choose(self.preset, &self.hints, name, shape, src, &counters);
        self.i_attention_wv += step.attn_v as usize;
        self.i_ffn_down += step.ffn_down as usize;
        self.n_fallback += step.fallback as usize;
        t
    }
}

struct Counters {
    i_attention_wv: usize,
    n_attention_wv: usize,
    i_ffn: usize,
    n_ffn: usize,
}

#[derive(Default)]
struct Step {
    attn_v: bool,
    ffn_down: bool,
    fallback: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Category {
    Output,
    TokenEmbd,
    AttnQkv,
    AttnKvB,
    AttnV,
    AttnK,
    AttnQ,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    use Category::*;
    if name == "output.weight" {
        return Output;
    }
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return TokenEmbd;
    }
    const ORDER: [(&str, Category); 10] = [
        ("attn_qkv.weight", AttnQkv),
        ("attn_kv_b.weight", AttnKvB),
        ("attn_v.weight", AttnV),
        ("attn_k.weight", AttnK),
        ("attn_q.weight", AttnQ),
        ("attn_output.weight", AttnOutput),
        ("ffn_up", FfnUp),
        ("ffn_gate", FfnGate),
        ("ffn_down", FfnDown),
        ("", Other),
    ];
    ORDER
        .iter()
        .find(|(pat, _)| name.contains(pat))
        .map_or(Other, |(_, c)| *c)
}

fn is_attn_v(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// ggml_n_dims: dimensions up to the last one larger than 1.
fn n_dims(shape: &[u64]) -> usize {
    let ne: Vec<u64> = shape.iter().rev().copied().collect();
    ne.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
}

/// `tensor_allows_quantization` for the names a LLaMA-family GGUF can hold.
fn allows_quantization(name: &str, shape: &[u64]) -> bool {
    if n_dims(shape) < 2 || !name.ends_with("weight") {
        return false;
    }
    const NEVER: [&str; 11] = [
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "attn_rel_b.weight",
        "time_mix_",
        ".position_embd",
    ];
    !NEVER.iter().any(|p| name.contains(p))
        && name != "position_embd.weight"
        && name != "token_types.weight"
}

fn use_more_bits(i: usize, n: usize) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The whole `llama_tensor_get_type` for one tensor; returns the type and which counters
/// it advanced.
fn choose(
    preset: Preset,
    hints: &ModelHints,
    name: &str,
    shape: &[u64],
    src: DType,
    c: &Counters,
) -> (DType, Step) {
    let mut step = Step::default();
    if !allows_quantization(name, shape) {
        return (src, step);
    }
    let default = preset.default_type();
    if !default.is_quantized() {
        return (default, step);
    }
    let ne0 = shape.last().copied().unwrap_or(1);
    let t = rules(preset, hints, name, ne0, c, &mut step);
    let (t, fell_back) = fallback(t, ne0);
    step.fallback = fell_back;
    (t, step)
}

/// `llama_tensor_get_type_impl` for LLaMA (not Falcon), no imatrix.
fn rules(p: Preset, h: &ModelHints, name: &str, ne0: u64, c: &Counters, step: &mut Step) -> DType {
    use DType as T;
    use Preset as P;
    let mut t = p.default_type();
    let cat = category(name);
    if cat == Category::Output || (h.tied_embeddings && cat == Category::TokenEmbd) {
        if !ne0.is_multiple_of(t.block_size() as u64) {
            t = T::Q8_0;
        } else if t != T::Q8_0 {
            t = T::Q6_K;
        }
    } else if cat == Category::TokenEmbd {
        // the presets here keep the default type
    } else if is_attn_v(cat) {
        let i = c.i_attention_wv;
        match p {
            P::Q2_K => t = if h.n_gqa() >= 4 { T::Q4_K } else { T::Q3_K },
            P::Q3_K_M => t = if i < 2 { T::Q5_K } else { T::Q4_K },
            P::Q3_K_L => t = T::Q5_K,
            P::Q4_K_M | P::Q5_K_M if use_more_bits(i, c.n_attention_wv) => t = T::Q6_K,
            P::Q4_K_S if i < 4 => t = T::Q5_K,
            _ => {}
        }
        if h.is_70b() && matches!(t, T::Q3_K | T::Q4_K) {
            t = T::Q5_K;
        }
        if h.n_expert == 8 {
            t = T::Q8_0;
        }
        step.attn_v = true;
    } else if cat == Category::AttnK {
        if h.n_expert == 8 {
            t = T::Q8_0;
        }
    } else if cat == Category::FfnDown {
        let (i, n) = if h.n_expert > 1 {
            (layer_of(name).unwrap_or(0), h.n_layer)
        } else {
            (c.i_ffn, c.n_ffn)
        };
        match p {
            P::Q2_K => t = T::Q3_K,
            P::Q3_K_M => t = if i < n / 16 { T::Q5_K } else { T::Q4_K },
            P::Q3_K_L => t = T::Q5_K,
            P::Q4_K_M if use_more_bits(i, n) => t = T::Q6_K,
            P::Q5_K_M if use_more_bits(i, n) => t = T::Q6_K,
            P::Q4_K_S if i < n / 8 => t = T::Q5_K,
            _ => {}
        }
        step.ffn_down = true;
    } else if cat == Category::AttnOutput {
        if h.n_expert == 8 {
            if matches!(p, P::Q2_K | P::Q3_K_S | P::Q3_K_M | P::Q4_K_S | P::Q4_K_M) {
                t = T::Q5_K;
            }
        } else {
            match p {
                P::Q2_K => t = T::Q3_K,
                P::Q3_K_M => t = T::Q4_K,
                P::Q3_K_L => t = T::Q5_K,
                _ => {}
            }
        }
    } else if cat == Category::AttnQkv {
        match p {
            P::Q3_K_M | P::Q3_K_L => t = T::Q4_K,
            P::Q4_K_M => t = T::Q5_K,
            P::Q5_K_M => t = T::Q6_K,
            _ => {}
        }
    }
    t
}

/// `tensor_type_fallback`: a type whose block does not divide the row length falls back to
/// a 32-block type, and to F16 when even that does not divide it.
fn fallback(t: DType, ne0: u64) -> (DType, bool) {
    if ne0.is_multiple_of(t.block_size() as u64) {
        return (t, false);
    }
    let r = match t {
        DType::Q2_K | DType::Q3_K => DType::Q4_0,
        DType::Q4_K => DType::Q5_0,
        DType::Q5_K => DType::Q5_1,
        DType::Q6_K => DType::Q8_0,
        other => other,
    };
    if ne0.is_multiple_of(r.block_size() as u64) {
        (r, true)
    } else {
        (DType::F16, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(n_layer: usize) -> ModelHints {
        ModelHints {
            n_layer,
            n_head: 8,
            n_head_kv: 8,
            n_expert: 0,
            tied_embeddings: false,
        }
    }

    #[test]
    fn names_and_file_types_follow_llama_cpp() {
        assert_eq!(Preset::from_name("q4_k_m"), Some(Preset::Q4_K_M));
        assert_eq!(Preset::from_name("Q4_K"), Some(Preset::Q4_K_M));
        assert_eq!(Preset::from_name("bf16"), Some(Preset::BF16));
        assert_eq!(Preset::from_name("q4_k_x"), None);
        assert_eq!(Preset::Q4_K_M.file_type(), 15);
        assert_eq!(Preset::Q8_0.file_type(), 7);
        assert_eq!(Preset::BF16.file_type(), 32);
    }

    /// `plan_types` for a LLaMA-shaped model of `n_layer` layers (512 x 512 matrices, in
    /// Meta's order, not llama.cpp's), by GGUF name.
    fn planned(p: Preset, n_layer: usize) -> std::collections::HashMap<String, DType> {
        let mut model: Vec<(String, Vec<u64>)> = vec![
            ("token_embd.weight".into(), vec![512, 512]),
            ("output_norm.weight".into(), vec![512]),
            ("output.weight".into(), vec![512, 512]),
        ];
        for i in 0..n_layer {
            for n in [
                "attn_q",
                "attn_k",
                "attn_v",
                "attn_output",
                "ffn_gate",
                "ffn_down",
                "ffn_up",
            ] {
                model.push((format!("blk.{i}.{n}.weight"), vec![512, 512]));
            }
            model.push((format!("blk.{i}.attn_norm.weight"), vec![512]));
        }
        let tensors: Vec<(&str, &[u64], DType)> = model
            .iter()
            .map(|(n, s)| {
                let src = if s.len() > 1 { DType::F16 } else { DType::F32 };
                (n.as_str(), s.as_slice(), src)
            })
            .collect();
        let (types, _) = plan_types(p, hints(n_layer), &tensors);
        model.iter().map(|(n, _)| n.clone()).zip(types).collect()
    }

    #[test]
    fn q4_k_m_gives_attn_v_and_ffn_down_more_bits_on_chosen_layers() {
        let t = planned(Preset::Q4_K_M, 8);
        // use_more_bits(i, 8): i < 1 || i >= 7 || (i - 1) % 3 == 2 -> layers 0, 3, 6, 7
        let six: Vec<usize> = (0..8)
            .filter(|i| t[&format!("blk.{i}.attn_v.weight")] == DType::Q6_K)
            .collect();
        assert_eq!(six, vec![0, 3, 6, 7]);
        assert_eq!(t["blk.3.ffn_down.weight"], DType::Q6_K);
        assert_eq!(t["blk.4.ffn_down.weight"], DType::Q4_K);
        assert_eq!(t["blk.4.attn_q.weight"], DType::Q4_K);
        assert_eq!(t["output.weight"], DType::Q6_K);
        assert_eq!(t["token_embd.weight"], DType::Q4_K);
        assert_eq!(t["blk.0.attn_norm.weight"], DType::F32);
    }

    #[test]
    fn the_layer_counters_follow_llama_cpp_order_not_the_input_order() {
        // 12 layers: names sort blk.10 / blk.11 before blk.2 as strings, but llama.cpp (and
        // so the plan) counts layers numerically: Q4_K_M's choices equal the layer rule.
        let t = planned(Preset::Q4_K_M, 12);
        for i in 0..12usize {
            // use_more_bits(i, 12): the first and last eighth, and every third in between.
            let more = !(1..10).contains(&i) || (i - 1) % 3 == 2;
            let want = if more { DType::Q6_K } else { DType::Q4_K };
            assert_eq!(t[&format!("blk.{i}.attn_v.weight")], want, "attn_v {i}");
            assert_eq!(t[&format!("blk.{i}.ffn_down.weight")], want, "ffn_down {i}");
        }
    }

    #[test]
    fn rows_not_divisible_by_256_fall_back() {
        let t = |p: Preset, cols: u64| {
            let shape = [64, cols];
            let (types, fallbacks) = plan_types(
                p,
                hints(8),
                &[("blk.1.attn_q.weight", shape.as_slice(), DType::F16)],
            );
            assert_eq!(fallbacks, 1);
            types[0]
        };
        assert_eq!(t(Preset::Q4_K_M, 704), DType::Q5_0);
        assert_eq!(t(Preset::Q5_K_S, 704), DType::Q5_1);
        assert_eq!(t(Preset::Q6_K, 704), DType::Q8_0);
        assert_eq!(t(Preset::Q2_K, 704), DType::Q4_0);
        assert_eq!(t(Preset::Q4_K_M, 100), DType::F16);
        assert_eq!(t(Preset::Q4_0, 100), DType::F16);
    }

    #[test]
    fn llama_cpp_order_puts_globals_first_then_layers() {
        let mut v = vec![
            "blk.10.attn_q.weight",
            "output.weight",
            "blk.2.ffn_up.weight",
            "blk.2.attn_k.weight",
            "token_embd.weight",
        ];
        llama_cpp_order(&mut v, |s| s);
        assert_eq!(
            v,
            vec![
                "output.weight",
                "token_embd.weight",
                "blk.2.attn_k.weight",
                "blk.2.ffn_up.weight",
                "blk.10.attn_q.weight"
            ]
        );
    }
}
