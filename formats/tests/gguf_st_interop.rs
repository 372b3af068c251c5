//! Interop with the real producers and consumers: gguf-py (GGUFWriter / GGUFReader), the
//! `safetensors` Python package and transformers' sharded `save_pretrained`, driven through
//! `tests/interop/gguf_st_roundtrip.py` with the interop venv (`LLAMA_TOOL_PYTHON`).
//! Both sides describe a file in one JSON shape (see the script) and the descriptions must
//! be equal; our writers must also reproduce the Python writers' bytes exactly.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use llama_codecs::gguf::{GgufArray, GgufFile, GgufSplit, GgufValue, GgufWriter};
use llama_codecs::safetensors::{
    dtype_to_st_name, index_json, SafetensorsFile, SafetensorsFolder, SafetensorsWriter,
};
use llama_codecs::TensorInfo;
use llama_ggml::DType;
use serde_json::{json, Value};

#[path = "../../tests/support/interop.rs"]
mod interop;
use interop::python;

/// Run the interop script and parse its JSON description.
fn script(py: &Path, args: &[&str]) -> Value {
    let s = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/gguf_st_roundtrip.py");
    let o = Command::new(py)
        .arg(s)
        .args(args)
        .output()
        .expect("spawn python");
    assert!(
        o.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("script prints JSON")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const T: [&str; 13] = [
    "U8", "I8", "U16", "I16", "U32", "I32", "F32", "BOOL", "STRING", "ARRAY", "U64", "I64", "F64",
];

fn gguf_value(v: &GgufValue) -> Value {
    let t = T[v.value_type().id() as usize];
    let v = match v {
        GgufValue::U8(x) => json!(x),
        GgufValue::I8(x) => json!(x),
        GgufValue::U16(x) => json!(x),
        GgufValue::I16(x) => json!(x),
        GgufValue::U32(x) => json!(x),
        GgufValue::I32(x) => json!(x),
        GgufValue::F32(x) => json!(f64::from(*x)),
        GgufValue::Bool(x) => json!(x),
        GgufValue::String(x) => json!(x),
        GgufValue::U64(x) => json!(x),
        GgufValue::I64(x) => json!(x),
        GgufValue::F64(x) => json!(x),
        GgufValue::Array(a) => {
            let mut o = gguf_array(a);
            o["t"] = json!("ARRAY");
            return o;
        }
    };
    json!({"t": t, "v": v})
}

fn gguf_array(a: &GgufArray) -> Value {
    let v = match a {
        GgufArray::U8(x) => json!(x),
        GgufArray::I8(x) => json!(x),
        GgufArray::U16(x) => json!(x),
        GgufArray::I16(x) => json!(x),
        GgufArray::U32(x) => json!(x),
        GgufArray::I32(x) => json!(x),
        GgufArray::F32(x) => json!(x.iter().map(|&f| f64::from(f)).collect::<Vec<_>>()),
        GgufArray::Bool(x) => json!(x),
        GgufArray::String(x) => json!(x),
        GgufArray::U64(x) => json!(x),
        GgufArray::I64(x) => json!(x),
        GgufArray::F64(x) => json!(x),
        GgufArray::Array(x) => Value::Array(x.iter().map(gguf_array).collect()),
    };
    json!({"elem": T[a.elem_type().id() as usize], "v": v})
}

fn gguf_tensor(info: &TensorInfo, data: &[u8]) -> Value {
    let rev: Vec<u64> = info.shape.iter().rev().copied().collect();
    json!({"name": info.name, "type": info.dtype.ggml_id(), "shape": info.shape,
           "gguf_shape": rev, "data": hex(data)})
}

fn describe_gguf(f: &GgufFile) -> Value {
    let md: Vec<Value> = f
        .metadata()
        .iter()
        .map(|(k, v)| json!([k, gguf_value(v)]))
        .collect();
    let ts: Vec<Value> = f
        .tensors()
        .iter()
        .map(|t| gguf_tensor(&t.info, &f.view(t).unwrap().data()))
        .collect();
    json!({"version": f.version(), "alignment": f.alignment(), "metadata": md, "tensors": ts})
}

#[test]
fn gguf_written_by_gguf_py_reads_identically_and_rewrites_byte_for_byte() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    for align in [32u64, 64] {
        let p = dir.path().join(format!("py-{align}.gguf"));
        let want = script(
            &py,
            &["gguf-write", p.to_str().unwrap(), &align.to_string()],
        );
        let f = GgufFile::open(&p).unwrap();
        assert_eq!(describe_gguf(&f), want, "alignment {align}");

        // Our writer, fed what we read, must produce gguf-py's exact bytes.
        let infos = f.tensors().iter().map(|t| t.info.clone()).collect();
        let mut w =
            GgufWriter::new(Vec::new(), f.metadata().to_vec(), infos, f.alignment()).unwrap();
        for t in f.tensors() {
            w.write_tensor(&t.info.name, &f.view(t).unwrap().data())
                .unwrap();
        }
        let ours = w.finish().unwrap();
        assert!(
            ours == std::fs::read(&p).unwrap(),
            "alignment {align}: bytes differ from gguf-py's"
        );
    }
}

#[test]
fn gguf_split_by_gguf_py_reads_identically() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sp.gguf");
    let mut want = script(&py, &["gguf-write-split", p.to_str().unwrap()]);
    let n_files = want["files"].take();
    assert!(n_files.as_u64() > Some(1), "gguf-py did not split");
    // Open through the middle shard: every file is found from any one.
    let mid = dir
        .path()
        .join(format!("sp-00002-of-{:05}.gguf", n_files.as_u64().unwrap()));
    let s = GgufSplit::open(&mid).unwrap();
    assert_eq!(Some(s.files().len() as u64), n_files.as_u64());
    let md: Vec<Value> = s
        .metadata()
        .iter()
        .map(|(k, v)| json!([k, gguf_value(v)]))
        .collect();
    let ts: Vec<Value> = s
        .tensors()
        .map(|(f, t)| gguf_tensor(&t.info, &f.view(t).unwrap().data()))
        .collect();
    let f0 = &s.files()[0];
    let got = json!({"version": f0.version(), "alignment": f0.alignment(), "metadata": md,
                     "tensors": ts, "files": null});
    assert_eq!(got, want);

    // A missing shard is one error naming it.
    std::fs::remove_file(
        dir.path()
            .join(format!("sp-00001-of-{:05}.gguf", n_files.as_u64().unwrap())),
    )
    .unwrap();
    let e = GgufSplit::open(&mid).unwrap_err().to_string();
    assert!(e.contains("sp-00001-of-") && !e.contains('\n'), "{e}");
}

fn our_gguf_metadata() -> Vec<(String, GgufValue)> {
    use GgufArray as A;
    use GgufValue as V;
    let kv = |k: &str, v| (k.to_string(), v);
    vec![
        kv("general.architecture", V::String("llama".into())),
        kv("llama.block_count", V::U32(32)),
        kv("u8", V::U8(255)),
        kv("i8", V::I8(-128)),
        kv("u16", V::U16(65535)),
        kv("i16", V::I16(-1)),
        kv("i32", V::I32(i32::MIN)),
        kv("f32", V::F32(-0.1)),
        kv("bool", V::Bool(false)),
        kv("str", V::String("naïve ▁tokens\n\"quoted\"".into())),
        kv("u64", V::U64(1 << 40)),
        kv("i64", V::I64(-(1 << 40))),
        kv("f64", V::F64(1.0e-300)),
        kv(
            "tokens",
            V::Array(A::String(vec!["<unk>".into(), "".into(), "▁ä".into()])),
        ),
        kv("scores", V::Array(A::F32(vec![0.0, -2.75, 1e10]))),
        kv("types", V::Array(A::I32(vec![2, 3, 1]))),
        kv("a.u8", V::Array(A::U8(vec![0, 128, 255]))),
        kv("a.i8", V::Array(A::I8(vec![-1, 1]))),
        kv("a.u16", V::Array(A::U16(vec![1, 65535]))),
        kv("a.i16", V::Array(A::I16(vec![-300]))),
        kv("a.u32", V::Array(A::U32(vec![u32::MAX]))),
        kv("a.bool", V::Array(A::Bool(vec![true, false]))),
        kv("a.u64", V::Array(A::U64(vec![u64::MAX]))),
        kv("a.i64", V::Array(A::I64(vec![i64::MIN, 5]))),
        kv("a.f64", V::Array(A::F64(vec![2.5, -0.125]))),
        kv("a.empty", V::Array(A::I32(vec![]))),
        kv(
            "a.nested",
            V::Array(A::Array(vec![
                A::U64(vec![1, 2]),
                A::String(vec!["x".into(), "yz".into()]),
                A::Array(vec![A::F32(vec![0.5]), A::Bool(vec![true])]),
            ])),
        ),
    ]
}

fn our_gguf_tensors() -> Vec<(TensorInfo, Vec<u8>)> {
    let t = |name: &str, dtype, shape: &[u64]| TensorInfo {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
    };
    let bytes = |n: usize, seed: u8| -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    };
    vec![
        (t("token_embd.weight", DType::F16, &[3, 8]), bytes(48, 1)),
        (t("blk.0.attn_norm.weight", DType::F32, &[8]), bytes(32, 2)),
        (
            t("blk.0.attn_q.weight", DType::Q8_0, &[2, 64]),
            bytes(4 * 34, 3),
        ),
        (
            t("blk.0.ffn_down.weight", DType::Q4_K, &[1, 256]),
            bytes(144, 4),
        ),
        (
            t("blk.0.ffn_up.weight", DType::Q6_K, &[2, 256]),
            bytes(420, 5),
        ),
        (t("output.weight", DType::BF16, &[2, 2, 2, 3]), bytes(48, 6)),
        (t("x.f32", DType::F32, &[2, 1, 3]), bytes(24, 7)),
    ]
}

#[test]
fn gguf_written_by_us_reads_identically_in_gguf_py() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    for align in [32u64, 16, 256] {
        let p = dir.path().join(format!("ours-{align}.gguf"));
        let md = our_gguf_metadata();
        let ts = our_gguf_tensors();
        let infos = ts.iter().map(|(t, _)| t.clone()).collect();
        let file = std::fs::File::create(&p).unwrap();
        let mut w =
            GgufWriter::new(std::io::BufWriter::new(file), md.clone(), infos, align).unwrap();
        for (t, d) in &ts {
            w.start_tensor(&t.name).unwrap();
            for c in d.chunks(7) {
                w.write_chunk(c).unwrap();
            }
            w.end_tensor().unwrap();
        }
        w.finish().unwrap();

        let mut md_json: Vec<Value> = md.iter().map(|(k, v)| json!([k, gguf_value(v)])).collect();
        if align != 32 {
            md_json.push(json!(["general.alignment", {"t": "U32", "v": align}]));
        }
        let ts_json: Vec<Value> = ts.iter().map(|(t, d)| gguf_tensor(t, d)).collect();
        let want =
            json!({"version": 3, "alignment": align, "metadata": md_json, "tensors": ts_json});
        let got = script(&py, &["gguf-describe", p.to_str().unwrap()]);
        assert_eq!(got, want, "alignment {align}");
    }
}

fn st_tensor(info: &TensorInfo, data: &[u8]) -> Value {
    json!({"name": info.name, "dtype": dtype_to_st_name(info.dtype), "shape": info.shape,
           "data": hex(data)})
}

fn describe_st(
    tensors: &[TensorInfo],
    data: impl Fn(&str) -> Vec<u8>,
    meta: Option<&std::collections::HashMap<String, String>>,
) -> Value {
    let mut ts: Vec<Value> = tensors
        .iter()
        .map(|t| st_tensor(t, &data(&t.name)))
        .collect();
    ts.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    json!({"metadata": meta, "tensors": ts})
}

#[test]
fn safetensors_written_by_python_reads_identically_and_rewrites_byte_for_byte() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("py.safetensors");
    let want = script(&py, &["st-write", p.to_str().unwrap()]);
    let f = SafetensorsFile::open(&p).unwrap();
    let data = |n: &str| f.view(n).unwrap().data().into_owned();
    assert_eq!(describe_st(f.tensors(), data, f.metadata()), want);

    let meta: BTreeMap<String, String> = f.metadata().unwrap().clone().into_iter().collect();
    let mut w = SafetensorsWriter::new(Vec::new(), f.tensors().to_vec(), Some(meta)).unwrap();
    for t in f.tensors() {
        w.write_tensor(&t.name, &f.view(&t.name).unwrap().data())
            .unwrap();
    }
    let ours = w.finish().unwrap();
    let theirs = std::fs::read(&p).unwrap();
    assert!(
        ours == theirs,
        "bytes differ from the safetensors package's:\nours   {}\ntheirs {}",
        String::from_utf8_lossy(&ours[..ours.len().min(400)]),
        String::from_utf8_lossy(&theirs[..theirs.len().min(400)])
    );
}

#[test]
fn safetensors_written_by_us_reads_identically_in_python() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ours.safetensors");
    let t = |name: &str, dtype, shape: &[u64]| TensorInfo {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
    };
    let ts = vec![
        (
            t("model.norm.weight", DType::F32, &[4]),
            (0u8..16).collect::<Vec<_>>(),
        ),
        (t("w.bf16", DType::BF16, &[2, 3]), (16u8..28).collect()),
        (t("w.f16", DType::F16, &[3, 1, 2]), (28u8..40).collect()),
        (
            t("w.f64", DType::F64, &[1]),
            vec![0, 0, 0, 0, 0, 0, 0xf0, 0x3f],
        ),
        (t("ids", DType::I64, &[2]), (40u8..56).collect()),
        (t("flags", DType::Bool, &[3]), vec![1, 0, 1]),
        (t("scalar", DType::F16, &[]), vec![0, 0x3c]),
        (t("none", DType::F32, &[2, 0]), vec![]),
        (t("\"odd\" näme", DType::I8, &[1]), vec![0x80]),
    ];
    let meta = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("x".to_string(), "\"y\"\n".to_string()),
    ]);
    let infos: Vec<TensorInfo> = ts.iter().map(|(t, _)| t.clone()).collect();
    let file = std::fs::File::create(&p).unwrap();
    let mut w = SafetensorsWriter::new(file, infos.clone(), Some(meta.clone())).unwrap();
    for (t, d) in &ts {
        w.write_tensor(&t.name, d).unwrap();
    }
    w.finish().unwrap();
    let meta: std::collections::HashMap<String, String> = meta.into_iter().collect();
    let data = |n: &str| ts.iter().find(|(t, _)| t.name == n).unwrap().1.clone();
    let want = describe_st(&infos, data, Some(&meta));
    assert_eq!(script(&py, &["st-describe", p.to_str().unwrap()]), want);
}

#[test]
fn sharded_folder_from_transformers_reads_identically() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("hf");
    let want = script(&py, &["hf-write", d.to_str().unwrap()]);
    let f = SafetensorsFolder::open(&d).unwrap();
    assert!(f.shards().len() > 1, "expected a sharded checkpoint");
    let data = |n: &str| f.view(n).unwrap().data().into_owned();
    let meta = f.shards()[0].metadata();
    assert_eq!(describe_st(&f.tensors(), data, meta), want);
    assert_eq!(script(&py, &["st-describe", d.to_str().unwrap()]), want);

    // Our index text for the same placement is transformers' byte for byte.
    let mut map = BTreeMap::new();
    let (mut size, mut params) = (0, 0);
    for s in f.shards() {
        for t in s.tensors() {
            let file = s.path().file_name().unwrap().to_string_lossy().into_owned();
            map.insert(t.name.clone(), file);
            size += t.n_bytes().unwrap();
            params += t.n_elements().unwrap();
        }
    }
    let theirs = std::fs::read_to_string(d.join("model.safetensors.index.json")).unwrap();
    assert_eq!(index_json(&map, size, Some(params)), theirs);
}
