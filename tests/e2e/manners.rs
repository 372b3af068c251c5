//! Terminal manners and the install surface: `--version` carries the git commit; shell
//! completions and man pages come from the clap definitions; `-q`/`-v` on every command;
//! every long job draws one progress bar with rate and ETA on a terminal (a pseudo-terminal
//! from util-linux `script`) and nothing in a pipe or with `--json`; `NO_COLOR` honoured.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn ok(o: std::process::Output) -> std::process::Output {
    assert_eq!(code(&o), 0, "failed:\n{}\n{}", stdout(&o), stderr(&o));
    o
}

/// Single-quote `s` for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Run `llama-tool ARGS` on a pseudo-terminal (stdout and stderr both the terminal) and
/// return everything it drew. `script` is util-linux's, in every Debian base system.
fn on_tty(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut line = sh_quote(bin().to_str().unwrap());
    for a in args {
        line.push(' ');
        line.push_str(&sh_quote(a));
    }
    let o = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .envs(env.iter().copied())
        .env("COLUMNS", "120")
        .output()
        .expect("util-linux `script` (apt-get install bsdutils) to run a pseudo-terminal");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{args:?} on a terminal failed:\n{text}");
    text
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn version_carries_the_git_commit() {
    let v = stdout(&ok(run(["--version"])));
    let rest = v
        .trim()
        .strip_prefix(&format!(
            "llama-tool {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected version line: {v}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| stdout(&o).trim().to_string());
    match head {
        // Built from this checkout: the commit it is at.
        Some(h) => assert_eq!(rest, h, "version names {rest}, HEAD is {h}"),
        // No git: the build says so rather than failing.
        None => assert!(
            rest == "unknown" || rest.bytes().all(|b| b.is_ascii_hexdigit()),
            "{v}"
        ),
    }
}

#[test]
fn completions_for_every_shell_know_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = stdout(&ok(run(["completions", shell])));
        for word in [
            "tokenize",
            "detokenize",
            "convert",
            "--outtype",
            "completions",
        ] {
            assert!(out.contains(word), "{shell} completions lack {word}");
        }
    }
    assert_eq!(code(&run(["completions", "tcsh"])), 2);
    // The bash script loads and completes: `llama-tool tok<TAB>` offers tokenize.
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("llama-tool.bash");
    std::fs::write(&f, stdout(&run(["completions", "bash"]))).unwrap();
    let probe = format!(
        "source {}; COMP_WORDS=(llama-tool tok); COMP_CWORD=1; COMP_LINE='llama-tool tok'; \
         COMP_POINT=${{#COMP_LINE}}; _llama__tool llama-tool tok llama-tool; echo \"${{COMPREPLY[@]}}\"",
        sh_quote(s(&f))
    );
    let o = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let offered = stdout(&o);
    assert!(
        offered.split_whitespace().any(|w| w == "tokenize"),
        "bash completion offered {offered:?}: {}",
        stderr(&o)
    );
}

#[test]
fn man_pages_for_the_tool_and_each_command() {
    let main = stdout(&ok(run(["man"])));
    assert!(
        main.starts_with(".ie") || main.contains(".TH llama-tool 1"),
        "{main}"
    );
    assert!(main.contains("tokenize"), "main page lists commands");
    let conv = stdout(&ok(run(["man", "convert"])));
    assert!(conv.contains(".TH llama-tool-convert 1"), "{conv}");
    assert!(conv.contains("outtype"), "{conv}");
    let o = run(["man", "nosuch"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no command `nosuch`"), "{}", stderr(&o));
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("man1");
    ok(run([
        OsStr::new("man"),
        OsStr::new("--out-dir"),
        dir.as_os_str(),
    ]));
    for page in [
        "llama-tool.1",
        "llama-tool-convert.1",
        "llama-tool-tokenize.1",
        "llama-tool-man.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    // groff renders it (Debian's man-db ships groff-base).
    if let Ok(o) = Command::new("groff")
        .args(["-k", "-man", "-Tutf8"])
        .arg(dir.join("llama-tool-tokenize.1"))
        .output()
    {
        assert!(o.status.success(), "{}", stderr(&o));
        // Drop grotty's overstrike (`X\bX` bold, `_\bX` underline).
        let raw: Vec<char> = stdout(&o).chars().collect();
        let mut text = String::new();
        for (i, &c) in raw.iter().enumerate() {
            if c != '\u{8}' && raw.get(i + 1) != Some(&'\u{8}') {
                text.push(c);
            }
        }
        assert!(text.contains("--no-bos"), "{text}");
        assert!(text.contains("Do not prepend"), "{text}");
    }
}

#[test]
fn quiet_and_verbose_are_global() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    ok(run(["synth", "-o", s(&m), "-q"]));
    let o = ok(run(["tokenize", s(&m), "--text", "the", "-v"]));
    assert!(
        stderr(&o).contains("vocabulary: 512 pieces"),
        "{}",
        stderr(&o)
    );
    let o = ok(run(["-q", "tokenize", s(&m), "--text", "the"]));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert!(stdout(&o).contains("'<s>'"));
    let o = run(["tokenize", s(&m), "--text", "the", "-q", "-v"]);
    assert_eq!(code(&o), 2, "-q and -v conflict");
    // Every command takes them.
    for cmd in [
        "inspect",
        "synth",
        "verify",
        "manifest",
        "download",
        "convert",
        "reshard",
        "quantize",
        "logits",
        "check",
        "demo",
        "tokenize",
        "detokenize",
        "completions",
        "man",
    ] {
        let help = stdout(&ok(run([cmd, "--help"])));
        assert!(
            help.contains("--quiet") && help.contains("--verbose"),
            "{cmd}"
        );
    }
}

/// A tiny model and its GGUF, for the progress tests.
fn fixture(dir: &Path) -> (String, String) {
    let m = dir.join("m");
    ok(run(["synth", "-o", s(&m), "--layers", "4", "-q"]));
    let g = dir.join("m.gguf");
    ok(run(["convert", s(&m), "-o", s(&g), "--no-manifest", "-q"]));
    (s(&m).to_string(), s(&g).to_string())
}

#[test]
fn long_jobs_draw_a_bar_with_rate_and_eta_only_on_a_terminal() {
    let t = tempfile::tempdir().unwrap();
    let (m, g) = fixture(t.path());
    let d = |n: &str| s(&t.path().join(n)).to_string();
    let (o1, o2, o3, o4, o5, mf) = (
        d("a.gguf"),
        d("b.gguf"),
        d("resharded"),
        d("hf"),
        d("q.gguf"),
        d("m.sha256"),
    );
    let jobs: Vec<Vec<&str>> = vec![
        vec!["convert", &m, "-o", &o1, "--no-manifest"],
        vec![
            "convert",
            &m,
            "--to",
            "safetensors",
            "-o",
            &o4,
            "--no-manifest",
        ],
        vec!["reshard", &m, "-o", &o3, "--mp", "2"],
        vec!["quantize", &g, &o5, "q8_0"],
        vec!["manifest", &m, "--format", "sha256sums", "-o", &mf],
        vec!["verify", &m],
        vec!["verify", &g, "--tensors", &m],
        vec!["logits", &m, "--tokens", "1,2,3"],
        vec!["check", &m, &g, "--tokens", "1,2,3,4"],
        vec!["convert", &g, "-o", &o2, "--no-manifest"],
    ];
    for job in &jobs {
        let out = on_tty(job, &[]);
        assert!(
            out.contains("ETA"),
            "{job:?}: no bar with ETA on a terminal:\n{out}"
        );
        assert!(out.contains("/s"), "{job:?}: no rate on a terminal:\n{out}");
        // Outputs exist now; the next run replaces them (or refuses), which is not the point.
        for p in [&o1, &o2, &o5, &mf] {
            let _ = std::fs::remove_file(p);
        }
        for p in [&o3, &o4] {
            let _ = std::fs::remove_dir_all(p);
        }
        // In a pipe: no bar.
        let o = run(job);
        assert_eq!(code(&o), 0, "{job:?}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("ETA"),
            "{job:?}: bar in a pipe: {}",
            stderr(&o)
        );
        for p in [&o1, &o2, &o5, &mf] {
            let _ = std::fs::remove_file(p);
        }
        for p in [&o3, &o4] {
            let _ = std::fs::remove_dir_all(p);
        }
    }
    // --json and -q: no bar even on a terminal.
    let out = on_tty(&["convert", &m, "-o", &o1, "--no-manifest", "--json"], &[]);
    assert!(!out.contains("ETA"), "{out}");
    let _ = std::fs::remove_file(&o1);
    let out = on_tty(&["-q", "convert", &m, "-o", &o1, "--no-manifest"], &[]);
    assert!(!out.contains("ETA"), "{out}");
}

#[test]
fn no_color_and_pipes_get_plain_text() {
    let coloured = on_tty(&["--help"], &[]);
    assert!(coloured.contains("\x1b["), "help is styled on a terminal");
    let plain = on_tty(&["--help"], &[("NO_COLOR", "1")]);
    assert!(!plain.contains("\x1b["), "NO_COLOR: {plain:?}");
    let piped = stdout(&ok(run(["--help"])));
    assert!(!piped.contains('\x1b'), "pipe: {piped:?}");
}

/// Run `llama-tool ARGS` in `cwd`; assert one JSON object with `snake_case` top-level keys,
/// `ok` a boolean matching the exit code, and (unless `path_key` is empty) the path at
/// `path_key` (dotted, numbers index arrays) equal to `given`, as typed.
fn conventions(cwd: &Path, args: &[&str], path_key: &str, given: &str) -> serde_json::Value {
    let o = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(code(&o) == 0 || code(&o) == 1, "{args:?}: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {}", stdout(&o)));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{args:?}: not an object"));
    assert_eq!(
        obj.get("ok").and_then(|x| x.as_bool()),
        Some(code(&o) == 0),
        "{args:?}: `ok` must be a boolean matching the exit code"
    );
    for k in obj.keys() {
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{args:?}: key {k} is not snake_case"
        );
    }
    if !path_key.is_empty() {
        let mut cur = &v;
        for part in path_key.split('.') {
            cur = match part.parse::<usize>() {
                Ok(i) => &cur[i],
                Err(_) => &cur[part],
            };
        }
        assert_eq!(cur.as_str(), Some(given), "{args:?}: {path_key} as given");
    }
    v
}

#[test]
fn json_output_follows_the_conventions() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // Relative paths, as a user types them.
    conventions(d, &["synth", "-o", "m", "--json"], "out", "m");
    conventions(d, &["inspect", "m", "--json"], "path", "m");
    conventions(
        d,
        &["convert", "m", "-o", "m.gguf", "--json"],
        "out",
        "m.gguf",
    );
    conventions(
        d,
        &["reshard", "m", "-o", "r", "--mp", "2", "--json"],
        "out",
        "r",
    );
    conventions(
        d,
        &["quantize", "m.gguf", "q.gguf", "q8_0", "--json"],
        "input",
        "m.gguf",
    );
    conventions(
        d,
        &["verify", "m", "--json"],
        "files.0.path",
        "m/consolidated.00.pth",
    );
    conventions(
        d,
        &["logits", "m", "--tokens", "1,2,3", "--json"],
        "model",
        "m",
    );
    conventions(
        d,
        &["check", "m", "m.gguf", "--tokens", "1,2,3", "--json"],
        "reference.path",
        "m",
    );
    let v = conventions(
        d,
        &[
            "check",
            "m",
            "q.gguf",
            "--tokens",
            "1,2,3",
            "--max-kld",
            "0",
            "--json",
        ],
        "candidate.path",
        "q.gguf",
    );
    assert_eq!(v["ok"], v["pass"]);
    conventions(
        d,
        &["tokenize", "m", "--text", "hi", "--json"],
        "model",
        "m",
    );
    conventions(
        d,
        &["detokenize", "m.gguf", "--ids", "1,2", "--json"],
        "vocab_path",
        "m.gguf",
    );
    // A failed verification: ok false, exit 1.
    std::fs::write(d.join("m/params.json"), b"{}").unwrap();
    let v = conventions(d, &["verify", "m", "--json"], "", "");
    assert_eq!(v["ok"], false);
}

/// Serve `data` at every path on loopback (plain 200, whole body) for `n` requests.
fn serve_once(data: Vec<u8>, n: usize) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().take(n) {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16384 {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => req.extend_from_slice(&buf[..k]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                data.len()
            );
            let _ = s.write_all(head.as_bytes());
            if !req.starts_with(b"HEAD") {
                let _ = s.write_all(&data);
            }
        }
    });
    port
}

#[test]
fn download_draws_its_bars_only_on_a_terminal() {
    let t = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 + i / 3) as u8).collect();
    let sha = crate::verify::sha256_hex(&data);
    let manifest = t.path().join("SHA256SUMS");
    std::fs::write(&manifest, format!("{sha}  w/shard.pth\n")).unwrap();
    for (tty, dir) in [(true, "a"), (false, "b")] {
        let port = serve_once(data.clone(), 8);
        let base = format!("http://127.0.0.1:{port}/");
        let out = t.path().join(dir);
        let args = [
            "download",
            "--manifest",
            s(&manifest),
            "--base-url",
            &base,
            "--dir",
            s(&out),
            "--retries",
            "1",
        ];
        let drawn = if tty {
            on_tty(&args, &[])
        } else {
            let o = run(args);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            stderr(&o)
        };
        assert_eq!(std::fs::read(out.join("w/shard.pth")).unwrap(), data);
        assert_eq!(drawn.contains("ETA"), tty, "tty {tty}: {drawn}");
    }
}
