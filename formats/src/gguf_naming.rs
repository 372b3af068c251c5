//! The `general.*` naming metadata llama.cpp's converter derives from a model's id (a
//! Hugging Face `org/Model-Name-7B-chat` id or a folder name): a port of gguf-py's
//! `Metadata.get_model_id_components`, `Metadata.id_to_title` (`gguf-py/gguf/metadata.py`)
//! and `model_weight_count_rounded_notation` (`gguf-py/gguf/utility.py`), so a GGUF we write
//! carries the `general.name`, `general.basename`, `general.finetune`, `general.version`,
//! `general.organization` and `general.size_label` that `convert_hf_to_gguf.py` would write.

/// What a model id says about the model (each part absent when the id does not say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelIdParts {
    /// The full model name component (the id without its organization).
    pub full_name: Option<String>,
    /// The organization (`meta-llama` in `meta-llama/Llama-2-7b-hf`).
    pub organization: Option<String>,
    /// `general.basename`.
    pub basename: Option<String>,
    /// `general.finetune`.
    pub finetune: Option<String>,
    /// `general.version`.
    pub version: Option<String>,
    /// `general.size_label`.
    pub size_label: Option<String>,
}

/// The naming keys of one GGUF, in the order llama.cpp writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GgufNaming {
    /// `general.name`.
    pub name: String,
    /// `general.version`.
    pub version: Option<String>,
    /// `general.organization`.
    pub organization: Option<String>,
    /// `general.finetune`.
    pub finetune: Option<String>,
    /// `general.basename`.
    pub basename: Option<String>,
    /// `general.size_label`.
    pub size_label: Option<String>,
}

impl GgufNaming {
    /// What `convert_hf_to_gguf.py` writes for a model whose ids are `ids` (most trusted
    /// first: config.json's `_name_or_path` when it has at most one `/`, then the folder
    /// name), with `total_params` parameters; `name` overrides `general.name`
    /// (`--model-name`).
    pub fn derive(ids: &[&str], total_params: u64, name: Option<&str>) -> GgufNaming {
        let mut n = GgufNaming::default();
        let mut full_name = None;
        for id in ids {
            let p = model_id_components(id, total_params as i64);
            full_name = full_name.or(p.full_name.map(|f| id_to_title(&f)));
            n.organization = n.organization.or(p.organization.map(|o| id_to_title(&o)));
            n.basename = n.basename.or(p.basename);
            n.finetune = n.finetune.or(p.finetune);
            n.version = n.version.or(p.version);
            n.size_label = n.size_label.or(p.size_label);
        }
        n.name = name
            .map(str::to_string)
            .or(full_name)
            .or_else(|| ids.last().map(|s| s.to_string()))
            .unwrap_or_default();
        if n.size_label.is_none() && total_params > 0 {
            n.size_label = Some(weight_count_rounded(total_params, 2));
        }
        n
    }
}

/// gguf-py's `model_weight_count_rounded_notation`: 6738415616 -> "6.7B", 227328 -> "227K".
pub fn weight_count_rounded(count: u64, min_digits: usize) -> String {
    let c = count as f64;
    let (scaled, suffix) = if c > 1e12 {
        (c * 1e-12, "T")
    } else if c > 1e9 {
        (c * 1e-9, "B")
    } else if c > 1e6 {
        (c * 1e-6, "M")
    } else {
        (c * 1e-3, "K")
    };
    // Python's round() rounds half to even.
    let rounded = scaled.round_ties_even();
    let int_digits = format!("{rounded:.0}").trim_start_matches('0').len();
    let fix = min_digits.saturating_sub(int_digits);
    format!("{scaled:.fix$}{suffix}")
}

/// Python's `str.islower()`: at least one cased character and no upper-case one.
fn py_islower(s: &str) -> bool {
    s.chars().any(char::is_lowercase) && !s.chars().any(char::is_uppercase)
}

/// Python's `str.title()`: a letter after a non-letter is upper-cased, the others lowered.
fn py_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_cased = false;
    for c in s.chars() {
        if prev_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_cased = c.is_alphabetic();
    }
    out
}

/// `^(v\d+(?:\.\d+)*|\d.*)$`.
fn is_version_or_number(w: &str) -> bool {
    if w.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    w.strip_prefix('v').is_some_and(dotted_digits)
}

/// `\d+([.]\d+)*`.
fn dotted_digits(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// gguf-py's `Metadata.id_to_title`.
pub fn id_to_title(s: &str) -> String {
    s.trim()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| {
            if py_islower(w) && !is_version_or_number(w) {
                py_title(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(v|iter)?\d+([.]\d+)*`, case-insensitive.
fn is_version(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    let rest = l
        .strip_prefix("iter")
        .or_else(|| l.strip_prefix('v'))
        .unwrap_or(&l);
    dotted_digits(rest) || dotted_digits(&l)
}

/// `i?q\d(_\w)*|b?fp?(16|32)`, case-insensitive.
fn is_quant_type(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    let q = l.strip_prefix('i').unwrap_or(&l);
    if let Some(rest) = q.strip_prefix('q') {
        let mut chars = rest.chars();
        if chars.next().is_some_and(|c| c.is_ascii_digit()) {
            let tail: Vec<char> = chars.collect();
            if tail.len().is_multiple_of(2)
                && tail
                    .chunks(2)
                    .all(|c| c[0] == '_' && (c[1].is_alphanumeric() || c[1] == '_'))
            {
                return true;
            }
        }
    }
    let f = l.strip_prefix('b').unwrap_or(&l);
    let check = |s: &str| {
        s.strip_prefix('f')
            .map(|r| r.strip_prefix('p').unwrap_or(r))
            .is_some_and(|r| r == "16" || r == "32")
    };
    check(f) || check(&l)
}

/// `(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)`, case-insensitive.
fn is_size(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    if ["small", "mini", "medium", "large", "xl", "xxl"].contains(&l.as_str()) {
        return true;
    }
    let b = l.as_bytes();
    let digits = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    // Try the optional prefix (`a`, `N x`, none) and match the rest.
    let rest_ok = |mut i: usize| -> bool {
        let d = digits(i);
        if d == 0 {
            return false;
        }
        i += d;
        if i < b.len() && (b[i] == b'.' || b[i] == b'_') {
            let d = digits(i + 1);
            if d > 0 {
                i += 1 + d;
            }
        }
        if i >= b.len() || !b"kmbt".contains(&b[i]) {
            return false;
        }
        i += 1;
        if i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i == b.len()
    };
    if rest_ok(0) {
        return true;
    }
    if b.first() == Some(&b'a') && rest_ok(1) {
        return true;
    }
    let d = digits(0);
    d > 0 && b.get(d) == Some(&b'x') && rest_ok(d + 1)
}

#[derive(Default, Clone)]
struct Tags {
    basename: bool,
    size_label: bool,
    finetune: bool,
    version: bool,
    kind: bool,
}

impl Tags {
    fn is_empty(&self) -> bool {
        !(self.basename || self.size_label || self.finetune || self.version || self.kind)
    }
    fn len(&self) -> usize {
        [
            self.basename,
            self.size_label,
            self.finetune,
            self.version,
            self.kind,
        ]
        .iter()
        .filter(|&&x| x)
        .count()
    }
}

/// gguf-py's `Metadata.get_model_id_components` (for a model, not a LoRA: `total_params`
/// >= 0).
pub fn model_id_components(model_id: &str, total_params: i64) -> ModelIdParts {
    if model_id.contains(' ') {
        return ModelIdParts {
            full_name: Some(model_id.to_string()),
            ..Default::default()
        };
    }
    let (mut org, full) = match model_id.split_once('/') {
        Some((o, n)) => (Some(o.to_string()), n.to_string()),
        None => (None, model_id.to_string()),
    };
    if org.as_deref().is_some_and(|o| o.starts_with('.')) {
        org = None;
    }
    let mut parts: Vec<String> = full
        .split('-')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let mut tags: Vec<Tags> = vec![Tags::default(); parts.len()];
    for i in 0..parts.len() {
        let part = parts[i].clone();
        if is_version(&part) {
            tags[i].version = true;
        } else if is_quant_type(&part) {
            tags[i].kind = true;
            parts[i] = part.to_uppercase();
        } else if i > 0 && is_size(&part) {
            let mut part: Vec<char> = part.replace('_', ".").chars().collect();
            let n = part.len();
            if part[n - 1].is_ascii_digit() && n >= 2 {
                // bloom-7b1 -> 7.1b
                let (a, b) = (part[n - 1], part[n - 2]);
                part.truncate(n - 2);
                part.extend(['.', a, b]);
            }
            let n = part.len();
            if n > 1 && part[n - 2].is_ascii_digit() && "kmbt".contains(part[n - 1]) {
                part[n - 1] = part[n - 1].to_ascii_uppercase();
            }
            if total_params != 0 {
                let n = part.len();
                let head: String = part[..n - 1].iter().collect();
                if let Ok(v) = head.parse::<f64>() {
                    let exp = " KMBT".find(part[n - 1]).map_or(-1, |e| e as i32);
                    let label = v * 1000f64.powi(exp);
                    let t = total_params as f64;
                    if total_params > 0 && (label - t).abs() > (7 * total_params / 8) as f64 {
                        tags[i].finetune = true;
                        part[n - 1] = part[n - 1].to_ascii_lowercase();
                    }
                }
            }
            if tags[i].is_empty() {
                tags[i].size_label = true;
            }
            parts[i] = part.into_iter().collect();
        } else if i > 0
            && ["chat", "instruct", "vision", "lora"].contains(&part.to_ascii_lowercase().as_str())
        {
            tags[i].finetune = true;
        }
    }
    let numeric_size = parts
        .iter()
        .zip(&tags)
        .any(|(p, t)| t.size_label && p.chars().any(|c| c.is_ascii_digit()));
    if numeric_size {
        for (p, t) in parts.iter().zip(tags.iter_mut()) {
            if t.size_label && p.chars().all(char::is_alphabetic) {
                t.size_label = false;
            }
        }
    }
    let mut at_start = true;
    for (p, t) in parts.iter().zip(tags.iter_mut()) {
        let alpha_first = p.chars().next().is_some_and(char::is_alphabetic);
        if at_start && ((t.is_empty() && alpha_first) || t.version) {
            t.basename = true;
        } else {
            at_start = false;
            if t.is_empty() {
                t.finetune = true;
            }
        }
    }
    for t in tags.iter_mut().rev() {
        if t.basename && t.len() > 1 {
            t.basename = false;
        } else {
            break;
        }
    }
    let join = |f: &dyn Fn(&Tags) -> bool| {
        let v: Vec<&str> = parts
            .iter()
            .zip(&tags)
            .filter(|(_, t)| f(t))
            .map(|(p, _)| p.as_str())
            .collect();
        (!v.is_empty()).then(|| v.join("-"))
    };
    let mut basename = join(&|t| t.basename);
    let mut sizes: Vec<&str> = Vec::new();
    for (p, t) in parts.iter().zip(&tags) {
        if t.size_label && !sizes.contains(&p.as_str()) {
            sizes.push(p);
        }
    }
    let size_label = (!sizes.is_empty()).then(|| sizes.join("-"));
    let finetune = join(&|t| t.finetune);
    let version = join(&|t| t.version && !t.basename);
    if size_label.is_none() && finetune.is_none() && version.is_none() {
        basename = None;
    }
    ModelIdParts {
        full_name: Some(full),
        organization: org,
        basename,
        finetune,
        version,
        size_label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounded_counts_match_gguf_py() {
        assert_eq!(weight_count_rounded(227_328, 2), "227K");
        assert_eq!(weight_count_rounded(6_738_415_616, 2), "6.7B");
        assert_eq!(weight_count_rounded(65_285_660_672, 2), "65B");
        assert_eq!(weight_count_rounded(1_500, 2), "1.5K");
        assert_eq!(weight_count_rounded(12_000_000, 2), "12M");
    }

    #[test]
    fn titles_match_gguf_py() {
        assert_eq!(id_to_title("tiny"), "Tiny");
        assert_eq!(id_to_title("Llama-2-7b-hf"), "Llama 2 7b Hf");
        assert_eq!(id_to_title("llama2b"), "Llama2B");
        assert_eq!(id_to_title("v1.5"), "v1.5");
    }

    #[test]
    fn hf_ids_split_like_gguf_py() {
        let p = model_id_components("meta-llama/Llama-2-7b-hf", 6_738_415_616);
        assert_eq!(p.organization.as_deref(), Some("meta-llama"));
        assert_eq!(p.basename.as_deref(), Some("Llama-2"));
        assert_eq!(p.size_label.as_deref(), Some("7B"));
        assert_eq!(p.finetune.as_deref(), Some("hf"));
        let p = model_id_components("7B", 6_738_415_616);
        assert_eq!(p.finetune.as_deref(), Some("7B"));
        assert_eq!(p.basename, None);
    }
}
