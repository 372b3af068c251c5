//! `llama-tool download` against a real nginx (release template, manifest by URL, a client
//! killed mid-file and resumed from its `.part`) and against an in-process fault-injecting
//! HTTP server (dropped connection, 500 then 200, ignored Range, wrong bytes, lying
//! Content-Length, redirect to file://). Every case ends in a verified file or a clear error,
//! never a corrupt file under the final name.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{bin, code, run, stderr, stdout};
use crate::verify::{bytes, coreutils};

// ---------------------------------------------------------------- fault-injecting server

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Honest, Range-aware.
    Good,
    /// First answer: full Content-Length, half the body, then the connection drops.
    DropMidBody,
    /// First answer 500, then honest.
    ServerErrorOnce,
    /// Never honours Range (always 200 + whole body); the first answer drops mid-body.
    IgnoresRange,
    /// Serves the body with one byte flipped.
    WrongBytes,
    /// Content-Length 1000 larger than the body, then closes.
    LongLength,
    /// Content-Length 10 shorter than the file (sends that many bytes).
    ShortLength,
    /// 302 to a file:// URL.
    RedirectToFile,
    /// 200 without Content-Length, then bytes forever (until the client hangs up).
    Endless,
    /// Honest headers, then one byte every 200 ms.
    Trickle,
}

struct Fault {
    files: HashMap<String, Vec<u8>>,
    hits: Mutex<HashMap<String, usize>>,
    ranges: Mutex<Vec<(String, u64)>>,
    stop: AtomicBool,
}

/// A loopback HTTP/1.1 server, one thread per connection, `Connection: close` always; it
/// stops when dropped (and serves at most 500 connections or 120 s in any case).
struct FaultServer {
    port: u16,
    state: Arc<Fault>,
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn mode_of(path: &str) -> Mode {
    match path.split('/').nth(1).unwrap_or("") {
        "drop" => Mode::DropMidBody,
        "500" => Mode::ServerErrorOnce,
        "norange" => Mode::IgnoresRange,
        "wrong" => Mode::WrongBytes,
        "long" => Mode::LongLength,
        "short" => Mode::ShortLength,
        "redirect" => Mode::RedirectToFile,
        "endless" => Mode::Endless,
        "trickle" => Mode::Trickle,
        _ => Mode::Good,
    }
}

impl FaultServer {
    fn start(files: HashMap<String, Vec<u8>>) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Fault {
            files,
            hits: Mutex::new(HashMap::new()),
            ranges: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut served = 0;
            while !st.stop.load(Ordering::SeqCst) && Instant::now() < deadline && served < 500 {
                match listener.accept() {
                    Ok((s, _)) => {
                        served += 1;
                        let st = st.clone();
                        std::thread::spawn(move || {
                            let _ = handle(s, &st);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultServer { port, state }
    }

    fn ranges_for(&self, file: &str) -> Vec<u64> {
        self.state
            .ranges
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(file))
            .map(|(_, r)| *r)
            .collect()
    }
}

fn handle(mut s: TcpStream, st: &Fault) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16384 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&req).into_owned();
    let path = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let range: Option<u64> = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if !k.eq_ignore_ascii_case("range") {
            return None;
        }
        v.trim()
            .strip_prefix("bytes=")?
            .strip_suffix('-')?
            .parse()
            .ok()
    });
    let hit = {
        let mut h = st.hits.lock().unwrap();
        let e = h.entry(path.clone()).or_insert(0);
        *e += 1;
        *e - 1
    };
    if let Some(r) = range {
        st.ranges.lock().unwrap().push((path.clone(), r));
    }
    let mode = mode_of(&path);
    let name = path.splitn(3, '/').nth(2).unwrap_or("");
    let Some(data) = st.files.get(name) else {
        return s.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let len = data.len();
    let head = |status: &str, cl: usize, extra: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {cl}\r\n{extra}Connection: close\r\n\r\n")
    };
    match mode {
        Mode::DropMidBody | Mode::IgnoresRange if hit == 0 => {
            s.write_all(head("200 OK", len, "").as_bytes())?;
            s.write_all(&data[..len / 2])?;
            s.flush()?;
            return Ok(()); // dropped
        }
        Mode::ServerErrorOnce if hit == 0 => {
            return s
                .write_all(format!("{}oops", head("500 Internal Server Error", 4, "")).as_bytes());
        }
        Mode::IgnoresRange => {
            s.write_all(head("200 OK", len, "").as_bytes())?;
            return s.write_all(data);
        }
        Mode::WrongBytes => {
            let mut d = data.clone();
            d[len / 3] ^= 0x04;
            s.write_all(head("200 OK", len, "").as_bytes())?;
            return s.write_all(&d);
        }
        Mode::LongLength => {
            s.write_all(head("200 OK", len + 1000, "").as_bytes())?;
            return s.write_all(data);
        }
        Mode::ShortLength => {
            s.write_all(head("200 OK", len - 10, "").as_bytes())?;
            return s.write_all(&data[..len - 10]);
        }
        Mode::RedirectToFile => {
            return s
                .write_all(head("302 Found", 0, "Location: file:///etc/passwd\r\n").as_bytes());
        }
        Mode::Endless => {
            s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let block = vec![b'x'; 64 << 10];
            while !st.stop.load(Ordering::SeqCst) {
                s.write_all(&block)?;
            }
            return Ok(());
        }
        Mode::Trickle => {
            s.write_all(head("200 OK", len, "").as_bytes())?;
            for b in data {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                s.write_all(&[*b])?;
                std::thread::sleep(Duration::from_millis(200));
            }
            return Ok(());
        }
        _ => {}
    }
    match range {
        Some(r) if r as usize >= len => {
            let cr = format!("Content-Range: bytes */{len}\r\n");
            s.write_all(head("416 Range Not Satisfiable", 0, &cr).as_bytes())
        }
        Some(r) if (r as usize) < len && r > 0 => {
            let cr = format!("Content-Range: bytes {r}-{}/{len}\r\n", len - 1);
            s.write_all(head("206 Partial Content", len - r as usize, &cr).as_bytes())?;
            s.write_all(&data[r as usize..])
        }
        _ => {
            s.write_all(head("200 OK", len, "").as_bytes())?;
            s.write_all(data)
        }
    }
}

/// Serve one 3 MB file under every fault mode and download it through a SHA256SUMS manifest.
fn fault_case(
    mode: &str,
) -> (
    std::process::Output,
    tempfile::TempDir,
    Vec<u8>,
    FaultServer,
) {
    fault_case_with(mode, &[], None)
}

/// [`fault_case`] with extra arguments, and a setup step run on the temp folder first.
fn fault_case_with(
    mode: &str,
    extra: &[&str],
    setup: Option<&dyn Fn(&Path)>,
) -> (
    std::process::Output,
    tempfile::TempDir,
    Vec<u8>,
    FaultServer,
) {
    let data = bytes(42, 3_000_000 + 17);
    let server = FaultServer::start(HashMap::from([("w/shard.pth".to_string(), data.clone())]));
    let tmp = tempfile::tempdir().unwrap();
    let sha = crate::verify::sha256_hex(&data);
    let manifest = tmp.path().join("SHA256SUMS");
    fs::write(&manifest, format!("{sha}  w/shard.pth\n")).unwrap();
    let dir = tmp.path().join("out");
    if let Some(f) = setup {
        f(tmp.path());
    }
    let base = format!("http://127.0.0.1:{}/{mode}/", server.port);
    let o = Command::new(bin())
        .args(["download", "--manifest"])
        .arg(&manifest)
        .args([
            "--base-url",
            &base,
            "--retries",
            "3",
            "--retry-delay-ms",
            "20",
            "--timeout",
            "10",
            "--dir",
        ])
        .arg(&dir)
        .args(extra)
        .output()
        .unwrap();
    (o, tmp, data, server)
}

fn assert_no_corrupt_final(tmp: &Path) {
    let fin = tmp.join("out/w/shard.pth");
    assert!(!fin.exists(), "a bad file reached its final name");
}

#[test]
fn dropped_connection_resumes_with_range_and_verifies() {
    let (o, tmp, data, server) = fault_case("drop");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(fs::read(tmp.path().join("out/w/shard.pth")).unwrap(), data);
    assert!(!tmp.path().join("out/w/shard.pth.part").exists());
    let ranges = server.ranges_for("shard.pth");
    assert!(
        ranges.iter().any(|&r| r > 0),
        "resumed with a Range request: {ranges:?}"
    );
}

#[test]
fn server_error_then_success_retries() {
    let (o, tmp, data, _s) = fault_case("500");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("HTTP 500"), "{}", stderr(&o));
    assert_eq!(fs::read(tmp.path().join("out/w/shard.pth")).unwrap(), data);
}

#[test]
fn server_ignoring_range_restarts_the_file() {
    let (o, tmp, data, _s) = fault_case("norange");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("ignored the Range"), "{}", stderr(&o));
    assert_eq!(fs::read(tmp.path().join("out/w/shard.pth")).unwrap(), data);
}

#[test]
fn wrong_bytes_are_a_mismatch_and_never_kept() {
    let (o, tmp, _data, _s) = fault_case("wrong");
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("MISMATCH") && stderr(&o).contains("sha256 expected"),
        "{}",
        stderr(&o)
    );
    assert_no_corrupt_final(tmp.path());
    assert!(!tmp.path().join("out/w/shard.pth.part").exists());
}

#[test]
fn lying_content_length_fails_clearly() {
    let (o, tmp, _d, _s) = fault_case("long");
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("/long/w/shard.pth") && stderr(&o).contains("gave up"),
        "{}",
        stderr(&o)
    );
    assert_no_corrupt_final(tmp.path());
    let (o, tmp, _d, _s) = fault_case("short");
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert_no_corrupt_final(tmp.path());
}

#[test]
fn redirect_to_a_non_http_scheme_is_refused() {
    let (o, tmp, _d, _s) = fault_case("redirect");
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("not followed"), "{}", stderr(&o));
    assert_no_corrupt_final(tmp.path());
}

// ---------------------------------------------------------------- real nginx

/// The nginx binary; its absence fails the test (scripts/install-nginx.sh installs it).
fn nginx() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("nginx is not installed: run scripts/install-nginx.sh (scripts/test.sh does)");
}

/// nginx on a free loopback port serving `root` (and `/slow/` = the same, rate-limited);
/// killed on drop.
struct Nginx {
    child: Child,
    port: u16,
    _prefix: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(exe: &Path, root: &Path) -> Nginx {
        let prefix = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = prefix.path().display();
        let conf = format!(
            "user root;\nworker_processes 1;\ndaemon off;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
               fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
               default_type application/octet-stream;\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {root};\n\
                 location /slow/ {{ alias {root}/; limit_rate 400k; }}\n  }}\n}}\n",
            root = root.display()
        );
        let conf_path = prefix.path().join("nginx.conf");
        fs::write(&conf_path, conf).unwrap();
        let child = Command::new(exe)
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(prefix.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let n = Nginx {
            child,
            port,
            _prefix: prefix,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                fs::read_to_string(n._prefix.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }
}

/// A release laid out as Meta's bucket: tokenizer + 7B (1 shard) + 13B (2 shards), checklists
/// by md5sum.
fn served_release() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    fs::write(root.join("tokenizer.model"), bytes(7, 20_000)).unwrap();
    let (_, chk) = coreutils(root, "md5sum", &["tokenizer.model"]);
    fs::write(root.join("tokenizer_checklist.chk"), chk).unwrap();
    for (m, shards, seed) in [("7B", 1, 10u64), ("13B", 2, 20)] {
        let d = root.join(m);
        fs::create_dir_all(&d).unwrap();
        let mut names = Vec::new();
        for i in 0..shards {
            let name = format!("consolidated.{i:02}.pth");
            fs::write(d.join(&name), bytes(seed + i as u64, 1_500_000 + i * 7)).unwrap();
            names.push(name);
        }
        fs::write(
            d.join("params.json"),
            format!("{{\"dim\": {}}}", 64 * shards),
        )
        .unwrap();
        names.push("params.json".into());
        let args: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let (_, chk) = coreutils(&d, "md5sum", &args);
        fs::write(d.join("checklist.chk"), chk).unwrap();
    }
    t
}

#[test]
fn nginx_release_template_download_then_verify_then_skip() {
    let exe = nginx();
    let served = served_release();
    let srv = Nginx::start(&exe, served.path());
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("llama");
    let url = format!("http://127.0.0.1:{}/*?Policy=x&Signature=y", srv.port);
    let args = [
        "download", "--url", &url, "--models", "7B,13B", "--jobs", "3", "--json", "--dir",
    ];
    let o = Command::new(bin()).args(args).arg(&dir).output().unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["summary"]["files"], 9,
        "3 checklists + tokenizer + 3 shards + 2 params"
    );
    assert_eq!(v["summary"]["failed"], 0);
    assert!(
        !stdout(&o).contains("Signature=y"),
        "signed query must not be printed"
    );
    for f in [
        "tokenizer.model",
        "7B/consolidated.00.pth",
        "13B/consolidated.01.pth",
        "13B/params.json",
    ] {
        assert_eq!(
            fs::read(dir.join(f)).unwrap(),
            fs::read(served.path().join(f)).unwrap(),
            "{f}"
        );
    }
    let o = run(["verify".as_ref(), dir.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = Command::new(bin()).args(args).arg(&dir).output().unwrap();
    assert_eq!(code(&o), 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["summary"]["skipped"], 6,
        "already verified files are not fetched again"
    );
}

#[test]
fn nginx_manifest_download_killed_mid_file_resumes_from_part() {
    let exe = nginx();
    let served = served_release();
    fs::write(served.path().join("00-big.bin"), bytes(99, 4_000_000)).unwrap();
    let o = run([
        "manifest".as_ref(),
        served.path().as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--chunk-size".as_ref(),
        "262144".as_ref(),
        "-o".as_ref(),
        served.path().join("llama.manifest.json").as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let srv = Nginx::start(&exe, served.path());
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("dl");
    let slow = format!("http://127.0.0.1:{}/slow/llama.manifest.json", srv.port);
    let mut child = Command::new(bin())
        .args(["download", "--manifest", &slow, "--jobs", "1", "--dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the client once 00-big.bin is partly there (jobs=1 takes the files in order; the
    // rate limit makes the 4 MB file, listed first, take ~10 s).
    let part = dir.join("00-big.bin.part");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let len = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if len > 500_000 {
            break;
        }
        assert!(Instant::now() < deadline, "00-big.bin.part never grew");
        assert!(
            child.try_wait().unwrap().is_none(),
            "client ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let had = fs::metadata(&part).unwrap().len();
    assert!(had < 4_000_000 && !dir.join("00-big.bin").exists());
    // Rerun at full speed: it resumes from the part and ends verified.
    let fast = format!("http://127.0.0.1:{}/llama.manifest.json", srv.port);
    let o = Command::new(bin())
        .args(["download", "--manifest", &fast, "--json", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let big = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "00-big.bin")
        .unwrap();
    assert_eq!(big["status"], "OK");
    let resumed = big["resumed_from"].as_u64().unwrap();
    assert!(
        resumed >= had - had % 262_144 && resumed > 0,
        "resumed at {resumed}, part had {had}"
    );
    assert_eq!(big["downloaded"].as_u64().unwrap(), 4_000_000 - resumed);
    assert!(!part.exists());
    assert_eq!(
        fs::read(dir.join("00-big.bin")).unwrap(),
        fs::read(served.path().join("00-big.bin")).unwrap()
    );
    // The manifest was kept beside the files: verify the whole download with it.
    let o = run(["verify".as_ref(), dir.as_os_str(), "--json".as_ref()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}

#[test]
fn resumed_part_with_a_bad_chunk_is_cut_back_and_refetched() {
    let data = bytes(43, 1_000_000);
    let server = FaultServer::start(HashMap::from([("w/shard.pth".to_string(), data.clone())]));
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("w")).unwrap();
    fs::write(src.join("w/shard.pth"), &data).unwrap();
    let manifest = tmp.path().join("m.manifest.json");
    let o = run([
        "manifest".as_ref(),
        src.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--chunk-size".as_ref(),
        "65536".as_ref(),
        "-o".as_ref(),
        manifest.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A .part of 600 kB whose chunk 3 was damaged on disk.
    let dir = tmp.path().join("out");
    fs::create_dir_all(dir.join("w")).unwrap();
    let mut part = data[..600_000].to_vec();
    part[3 * 65536 + 100] ^= 0xff;
    fs::write(dir.join("w/shard.pth.part"), &part).unwrap();
    let base = format!("http://127.0.0.1:{}/good/", server.port);
    let o = Command::new(bin())
        .args(["download", "--json", "--manifest"])
        .arg(&manifest)
        .args(["--base-url", &base, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(fs::read(dir.join("w/shard.pth")).unwrap(), data);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["files"][0]["resumed_from"],
        3 * 65536,
        "kept the chunks before the bad one"
    );
    assert_eq!(server.ranges_for("shard.pth"), vec![3 * 65536]);
}

#[test]
fn complete_part_killed_before_rename_is_finished_without_refetching() {
    let data = bytes(44, 200_000);
    let server = FaultServer::start(HashMap::from([("w/shard.pth".to_string(), data.clone())]));
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("SHA256SUMS");
    fs::write(
        &manifest,
        format!("{}  w/shard.pth\n", crate::verify::sha256_hex(&data)),
    )
    .unwrap();
    let dir = tmp.path().join("out");
    fs::create_dir_all(dir.join("w")).unwrap();
    fs::write(dir.join("w/shard.pth.part"), &data).unwrap();
    let base = format!("http://127.0.0.1:{}/good/", server.port);
    let o = Command::new(bin())
        .args(["download", "--json", "--manifest"])
        .arg(&manifest)
        .args(["--base-url", &base, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["files"][0]["downloaded"], 0,
        "416 bytes */N with N = part size means done"
    );
    assert_eq!(fs::read(dir.join("w/shard.pth")).unwrap(), data);
    assert!(!dir.join("w/shard.pth.part").exists());
}

// ---------------------------------------------------------------- budgets (issue 10)

/// One line on stderr, no control bytes, exit 2.
fn one_clean_line(o: &std::process::Output) -> String {
    let err = stderr(o);
    assert_eq!(code(o), 2, "{}{err}", stdout(o));
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(
        !err.trim_end().chars().any(|c| c.is_control()),
        "control bytes: {err:?}"
    );
    err
}

/// Finding 6: a server streaming forever without a Content-Length used to fill the disk;
/// now a file of unknown size stops at --max-size, and the part is removed.
#[test]
fn endless_body_stops_at_max_size() {
    let (o, tmp, _d, _s) = fault_case_with("endless", &["--max-size", "2MB"], None);
    let err = one_clean_line(&o);
    assert!(err.contains("2000000-byte cap"), "{err}");
    assert_no_corrupt_final(tmp.path());
    assert!(!tmp.path().join("out/w/shard.pth.part").exists());
}

/// Finding 6: `--deadline` bounds the whole download, however slowly bytes trickle in
/// (`--timeout` alone is per read).
#[test]
fn deadline_stops_a_trickling_server() {
    let start = Instant::now();
    let (o, tmp, _d, _s) = fault_case_with("trickle", &["--deadline", "2"], None);
    let err = one_clean_line(&o);
    assert!(err.contains("--deadline"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_no_corrupt_final(tmp.path());
}

/// Finding 5: a symlink planted at the `.part` name used to receive the server's bytes.
#[test]
fn symlinked_part_is_refused_and_its_target_untouched() {
    let plant = |root: &Path| {
        fs::create_dir_all(root.join("out/w")).unwrap();
        fs::write(root.join("victim"), b"precious").unwrap();
        std::os::unix::fs::symlink(root.join("victim"), root.join("out/w/shard.pth.part")).unwrap();
    };
    let (o, tmp, _d, _s) = fault_case_with("good", &[], Some(&plant));
    let err = one_clean_line(&o);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(fs::read(tmp.path().join("victim")).unwrap(), b"precious");
    assert_no_corrupt_final(tmp.path());
}
