//! BitTorrent: `verify --torrent`, `manifest --format torrent`, `download MAGNET|FILE.torrent`
//! and `seed`, against the real clients `transmission-create`/`transmission-show` and
//! `aria2c` (scripts/install-torrent-peers.sh). Every test that starts a peer first moves its
//! thread into a fresh network namespace with only `lo` up ([`isolate`]), so neither the engine
//! nor aria2c can reach anything but loopback; ports are fixed since each namespace is new.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{bin, code, run, stderr, stdout};

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// Fails naming the install script when a client is absent.
fn require(tool: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{tool} is not installed: run scripts/install-torrent-peers.sh (scripts/test.sh does)"
    );
}

/// Move the calling test thread (and every process it spawns) into a new network namespace
/// whose only interface is `lo`, up. Fails the test when that is impossible.
fn isolate() {
    // SAFETY: unshare(CLONE_NEWNET) changes only the calling thread's network namespace.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "BitTorrent tests run in their own network namespace and need root (CAP_SYS_ADMIN): \
         unshare(CLONE_NEWNET) failed: {}",
        std::io::Error::last_os_error()
    );
    let o = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .output()
        .expect("ip (iproute2) is needed to bring lo up in the test namespace");
    assert!(o.status.success(), "ip link set lo up: {}", stderr(&o));
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = stdout(&links);
    assert_eq!(
        links.lines().count(),
        1,
        "the namespace must hold only lo:\n{links}"
    );
    assert!(links.contains(": lo:"), "{links}");
}

/// Deterministic bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A tiny release with Meta's layout under `parent/LLaMA/`, checklists made by llama-tool.
fn llama_release(parent: &Path, scale: usize) -> PathBuf {
    let root = parent.join("LLaMA");
    let files: Vec<(&str, usize)> = vec![
        ("7B/consolidated.00.pth", 150_000 * scale + 123),
        ("7B/params.json", 100),
        ("13B/consolidated.00.pth", 100_000 * scale + 7),
        ("13B/consolidated.01.pth", 100_000 * scale + 4_096),
        ("13B/params.json", 101),
        ("tokenizer.model", 20_000),
        ("llama.sh", 300),
    ];
    for (k, (rel, len)) in files.iter().enumerate() {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, pattern(*len, k as u32 + 1)).unwrap();
    }
    for sub in ["7B", "13B"] {
        let d = root.join(sub);
        let o = run([
            os("manifest"),
            d.as_os_str(),
            os("--format"),
            os("chk"),
            os("-o"),
            d.join("checklist.chk").as_os_str(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let md5 = Command::new("md5sum")
        .arg("tokenizer.model")
        .current_dir(&root)
        .output()
        .unwrap();
    std::fs::write(root.join("tokenizer_checklist.chk"), md5.stdout).unwrap();
    root
}

fn flip(path: &Path, at: usize) {
    let mut d = std::fs::read(path).unwrap();
    d[at] ^= 0xff;
    std::fs::write(path, d).unwrap();
}

fn make_torrent(content: &Path, out: &Path, extra: &[&str]) {
    let mut args: Vec<std::ffi::OsString> = vec![
        "manifest".into(),
        content.into(),
        "--format".into(),
        "torrent".into(),
        "-o".into(),
        out.into(),
    ];
    args.extend(extra.iter().map(Into::into));
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn verify_torrent(torrent: &Path, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<std::ffi::OsString> = vec![
        "verify".into(),
        "--torrent".into(),
        torrent.into(),
        dir.into(),
    ];
    args.extend(extra.iter().map(Into::into));
    run(&args)
}

/// Wait for `child` at most `secs`; kill it and fail on timeout.
fn wait(child: &mut Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} did not finish in {secs} s: {err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the process when dropped (a failing test leaves no seeder behind).
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `aria2c` seeding `torrent` from `dir` on `port`; `verify` checks the data first (-V),
/// otherwise it seeds whatever bytes are there (a lying peer).
fn aria2c_seed(torrent: &Path, dir: &Path, port: u16, verify: bool, extra: &[&str]) -> Guard {
    require("aria2c");
    let mut c = Command::new("aria2c");
    c.arg(format!("--dir={}", dir.display()))
        .arg(format!("--listen-port={port}"))
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--seed-ratio=0.0",
            "--console-log-level=warn",
            "--summary-interval=0",
            "--disable-ipv6=true",
        ])
        .args(extra);
    if verify {
        c.arg("--check-integrity=true");
    } else {
        c.arg("--bt-seed-unverified=true");
    }
    c.arg(torrent).stdout(Stdio::null()).stderr(Stdio::null());
    let g = Guard(c.spawn().expect("spawn aria2c"));
    wait_port(port);
    g
}

fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "nothing listens on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal HTTP tracker on 127.0.0.1:`port` that answers every announce with `peers`
/// (compact form). Runs in this thread's namespace until the test ends.
fn tracker(port: u16, peers: &[u16]) {
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut body = b"d8:intervali5e5:peers".to_vec();
    body.extend_from_slice(format!("{}:", peers.len() * 6).as_bytes());
    for p in peers {
        body.extend_from_slice(&[127, 0, 0, 1]);
        body.extend_from_slice(&p.to_be_bytes());
    }
    body.push(b'e');
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
}

fn same_tree(a: &Path, b: &Path, rels: &[&str]) {
    for r in rels {
        assert_eq!(
            std::fs::read(a.join(r)).unwrap(),
            std::fs::read(b.join(r)).unwrap_or_default(),
            "{r} differs"
        );
    }
}

const ALL: [&str; 10] = [
    "7B/consolidated.00.pth",
    "7B/params.json",
    "7B/checklist.chk",
    "13B/consolidated.00.pth",
    "13B/consolidated.01.pth",
    "13B/params.json",
    "13B/checklist.chk",
    "tokenizer.model",
    "tokenizer_checklist.chk",
    "llama.sh",
];

#[test]
fn transmission_created_torrent_verifies_and_flags_flipped_and_truncated_files() {
    require("transmission-create");
    require("transmission-show");
    let dir = tempfile::tempdir().unwrap();
    let root = llama_release(dir.path(), 1);
    let t = dir.path().join("LLaMA.torrent");
    let o = Command::new("transmission-create")
        .args(["-s", "32", "-o"])
        .arg(&t)
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Intact: exit 0, in both the folder holding LLaMA/ and LLaMA/ itself.
    for d in [dir.path(), root.as_path()] {
        let o = verify_torrent(&t, d, &[]);
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains("OK         "), "{}", stdout(&o));
    }
    // --magnet: the info-hash transmission-show prints.
    let show = stdout(&Command::new("transmission-show").arg(&t).output().unwrap());
    let hash = show
        .lines()
        .find_map(|l| l.trim().strip_prefix("Hash: "))
        .expect("transmission-show prints the hash")
        .trim()
        .to_string();
    let good = format!("magnet:?xt=urn:btih:{hash}&dn=LLaMA");
    let o = verify_torrent(&t, dir.path(), &["--magnet", &good]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let bad = format!("magnet:?xt=urn:btih:{}", "0".repeat(40));
    let o = verify_torrent(&t, dir.path(), &["--magnet", &bad]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("FAILED     info-hash"),
        "{}",
        stdout(&o)
    );

    // One flipped byte: exit 1 naming the file and the piece (32 KiB pieces; files in
    // transmission's order 13B/..., 7B/..., llama.sh, tokenizer...).
    let victim = root.join("13B/consolidated.01.pth");
    flip(&victim, 50_000);
    let o = verify_torrent(&t, dir.path(), &[]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("FAILED"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("13B/consolidated.01.pth"), "{line}");
    // 13B/checklist.chk (~90 B) + 13B/consolidated.00.pth (100007) then 50000 into .01.
    let offset = std::fs::metadata(root.join("13B/checklist.chk"))
        .unwrap()
        .len()
        + 100_007
        + 50_000;
    let piece = offset / 32_768;
    assert!(line.contains(&format!("piece {piece} ")), "{line}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("FAILED ")).count(),
        1,
        "{out}"
    );
    // --json carries the same.
    let o = verify_torrent(&t, dir.path(), &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["failed"], 1);
    flip(&victim, 50_000);

    // A truncated file: WRONG SIZE.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap();
    f.set_len(1000).unwrap();
    let o = verify_torrent(&t, dir.path(), &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("WRONG SIZE ")
            && stdout(&o).contains("expected 104096 bytes, found 1000"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_torrent_among_the_manifests_is_verified_by_plain_verify() {
    let dir = tempfile::tempdir().unwrap();
    let root = llama_release(dir.path(), 1);
    let t = dir.path().join("LLaMA.torrent");
    make_torrent(&root, &t, &["--piece-size", "16K"]);
    std::fs::remove_file(root.join("7B/checklist.chk")).unwrap(); // torrent says it must exist
    let o = run([os("verify"), dir.path().as_os_str()]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("MISSING"), "{}", stdout(&o));
    make_torrent(&root, &t, &["--piece-size", "16K", "--force"]);
    let o = run([os("verify"), dir.path().as_os_str(), os("--json")]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 9 files of the torrent + the 3 checklists' 5 entries.
    assert!(v["summary"]["files"].as_u64().unwrap() >= 9, "{v}");
}

#[test]
fn our_torrents_are_deterministic_and_read_by_transmission_show() {
    require("transmission-show");
    let dir = tempfile::tempdir().unwrap();
    let root = llama_release(dir.path(), 1);
    let a = dir.path().join("a.torrent");
    let b = dir.path().join("b.torrent");
    let opts = [
        "--piece-size",
        "32K",
        "--tracker",
        "http://127.0.0.1:6969/announce",
        "--web-seed",
        "http://127.0.0.1:8080/",
        "--private",
    ];
    make_torrent(&root, &a, &opts);
    make_torrent(&root, &b, &opts);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let o = Command::new("transmission-show").arg(&a).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let show = stdout(&o);
    assert!(show.contains("Name: LLaMA"), "{show}");
    assert!(show.contains("Piece Size: 32.00 KiB"), "{show}");
    assert!(show.contains("Privacy: Private torrent"), "{show}");
    assert!(show.contains("http://127.0.0.1:6969/announce"), "{show}");
    assert!(show.contains("http://127.0.0.1:8080/"), "{show}");
    for f in ALL {
        assert!(show.contains(&format!("LLaMA/{f}")), "{f} missing:\n{show}");
    }
    // The info-hash we print is the one transmission computes.
    let ours = verify_torrent(&a, dir.path(), &["--json"]);
    assert_eq!(code(&ours), 0);
    let hash = show
        .lines()
        .find_map(|l| l.trim().strip_prefix("Hash: "))
        .unwrap()
        .trim()
        .to_string();
    let o = verify_torrent(
        &a,
        dir.path(),
        &["--magnet", &format!("magnet:?xt=urn:btih:{hash}")],
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    // A creation date only when asked. (Transmission 3 reads no v2 or hybrid torrent, not even
    // libtorrent's; those are tested against libtorrent below.)
    make_torrent(&root, &b, &["--creation-date", "1677628800", "--force"]);
    let show = stdout(&Command::new("transmission-show").arg(&b).output().unwrap());
    assert!(show.contains("2023"), "{show}");
}

#[test]
fn hostile_torrents_are_one_line_errors_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("x")).unwrap();
    let cases: [(&[u8], &str); 4] = [
        (
            b"d4:infod5:filesld6:lengthi5e4:pathl2:..1:aeee4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
            "`..`",
        ),
        (
            b"d4:infod6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces19:aaaaaaaaaaaaaaaaaaaee",
            "multiple of 20",
        ),
        (
            b"d4:infod6:lengthi5e4:name1:x12:piece lengthi-1e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
            "absurd",
        ),
        (
            b"d4:infod5:filesld6:lengthi9223372036854775807e4:pathl1:aeed6:lengthi9223372036854775807e4:pathl1:beed6:lengthi9e4:pathl1:ceee4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
            "overflow",
        ),
    ];
    for (bytes, want) in cases {
        let t = dir.path().join("h.torrent");
        std::fs::write(&t, bytes).unwrap();
        let o = verify_torrent(&t, dir.path(), &[]);
        assert_eq!(code(&o), 2, "{want}: {}{}", stdout(&o), stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("h.torrent") && err.contains(want), "{err}");
    }
}

/// Start `llama-tool seed ARGS`, wait for its "seeding ... on port" line; returns the guard
/// and everything it printed so far.
fn start_seed(args: &[&std::ffi::OsStr]) -> (Guard, String) {
    let mut child = Command::new(bin())
        .arg("seed")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let until = Instant::now() + Duration::from_secs(60);
    while !text.contains("network: ") {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => {
                text.push_str(&l);
                text.push('\n');
            }
            Err(_) => {
                if let Some(st) = child.try_wait().unwrap() {
                    let mut e = String::new();
                    child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
                    panic!("seed exited {st}: {text}{e}");
                }
                assert!(Instant::now() < until, "seed never became ready: {text}");
            }
        }
    }
    std::mem::forget(rx);
    (Guard(child), text)
}

#[test]
fn aria2c_downloads_from_llama_tool_seed_and_passes_its_integrity_check() {
    require("aria2c");
    isolate();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let root = llama_release(&src, 1);
    let t = dir.path().join("LLaMA.torrent");
    make_torrent(
        &root,
        &t,
        &[
            "--piece-size",
            "16K",
            "--tracker",
            "http://127.0.0.1:6969/announce",
        ],
    );
    tracker(6969, &[6881]);
    let (mut seeder, text) = start_seed(&[
        src.as_os_str(),
        os("--torrent"),
        t.as_os_str(),
        os("--port"),
        os("6881"),
        os("--no-dht"),
        os("--no-trackers"),
    ]);
    assert!(text.contains("seeding LLaMA on port 6881"), "{text}");
    assert!(text.contains("magnet:?xt=urn:btih:"), "{text}");
    assert!(
        text.contains("network: DHT off, trackers off, LSD off, UPnP off"),
        "{text}"
    );
    let out = dir.path().join("got");
    let mut aria = Command::new("aria2c")
        .arg(format!("--dir={}", out.display()))
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--seed-time=0",
            "--listen-port=6882",
            "--disable-ipv6=true",
            "--bt-stop-timeout=60",
            "--console-log-level=warn",
        ])
        .arg(&t)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait(&mut aria, 120, "aria2c download");
    assert!(st.success(), "aria2c failed");
    same_tree(&root, &out.join("LLaMA"), &ALL);
    // aria2c's own hash check of what it got.
    let o = Command::new("aria2c")
        .arg(format!("--dir={}", out.display()))
        .args([
            "--check-integrity=true",
            "--seed-time=0",
            "--enable-dht=false",
            "--bt-enable-lpd=false",
            "--bt-stop-timeout=5",
            "--listen-port=6883",
            "--disable-ipv6=true",
        ])
        .arg(&t)
        .output()
        .unwrap();
    assert!(o.status.success(), "aria2c -V: {}", stdout(&o));
    // Ctrl-C ends the seeder cleanly.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(seeder.0.id() as i32, libc::SIGINT) };
    let st = wait(&mut seeder.0, 30, "seed after SIGINT");
    assert_eq!(st.code(), Some(0), "seed did not stop cleanly");
    let mut rest = String::new();
    seeder
        .0
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut rest));
    let _ = rest;
}

fn download_json(args: &[&std::ffi::OsStr], secs: u64) -> (i32, serde_json::Value, String) {
    let mut child = Command::new(bin())
        .arg("download")
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait(&mut child, secs, "llama-tool download");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let v = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (st.code().unwrap_or(-1), v, err)
}

fn assert_loopback_only(v: &serde_json::Value) {
    let e = &v["engine"];
    assert_eq!(e["dht"], false, "{v}");
    assert_eq!(e["lsd"], false, "{v}");
    assert_eq!(e["upnp"], false, "{v}");
    assert_eq!(e["trackers"], false, "{v}");
}

#[test]
fn download_fetches_from_an_aria2c_seeder_and_only_the_7b_model_when_asked() {
    isolate();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let root = llama_release(&src, 1);
    let t = dir.path().join("LLaMA.torrent");
    make_torrent(&root, &t, &["--piece-size", "16K"]);
    let _seed = aria2c_seed(&t, &src, 6881, true, &[]);
    let net = ["--peer", "127.0.0.1:6881", "--no-dht", "--no-trackers"];
    // Everything.
    let all = dir.path().join("all");
    let mut args: Vec<&std::ffi::OsStr> = vec![t.as_os_str(), os("--dir"), all.as_os_str()];
    args.extend(net.iter().map(|s| os(s)));
    args.extend([os("--stall-timeout"), os("60")]);
    let (c, v, err) = download_json(&args, 120);
    assert_eq!(c, 0, "{err}{v}");
    assert_loopback_only(&v);
    assert_eq!(v["complete"], true);
    same_tree(&root, &all.join("LLaMA"), &ALL);
    assert!(
        !all.join(".llama-tool-torrent").exists(),
        "staging left behind"
    );
    assert!(
        v["checklist"].as_array().unwrap().len() >= 5,
        "checklists were checked: {v}"
    );
    // Rerunning a finished download re-checks the files in place and fetches nothing.
    let (c, v, err) = download_json(&args, 120);
    assert_eq!(c, 0, "{err}{v}");
    assert_eq!(v["fetched_bytes"], 0, "{v}");
    assert_eq!(v["resumed_bytes"], v["total_bytes"], "{v}");
    same_tree(&root, &all.join("LLaMA"), &ALL);

    // Only 7B (plus the tokenizer and its checklist).
    let sel = dir.path().join("sel");
    let mut args: Vec<&std::ffi::OsStr> = vec![t.as_os_str(), os("--dir"), sel.as_os_str()];
    args.extend(net.iter().map(|s| os(s)));
    args.extend([os("--models"), os("7B")]);
    let (c, v, err) = download_json(&args, 120);
    assert_eq!(c, 0, "{err}{v}");
    let mut got: Vec<String> = Vec::new();
    for e in llama_manifests_walk(&sel.join("LLaMA")) {
        got.push(e);
    }
    got.sort();
    assert_eq!(
        got,
        [
            "7B/checklist.chk",
            "7B/consolidated.00.pth",
            "7B/params.json",
            "tokenizer.model",
            "tokenizer_checklist.chk"
        ]
    );
    same_tree(
        &root,
        &sel.join("LLaMA"),
        &got.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // A size the torrent lacks: exit 2 naming those it has.
    let o = run([
        os("download"),
        t.as_os_str(),
        os("--dir"),
        sel.as_os_str(),
        os("--models"),
        os("65B"),
        os("--no-dht"),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no model 65B (this torrent has: 13B, 7B)"),
        "{}",
        stderr(&o)
    );
}

/// Files under `root`, relative, `/`-separated.
fn llama_manifests_walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}

#[test]
fn download_from_a_magnet_link_gets_metadata_from_the_peer() {
    isolate();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let root = llama_release(&src, 1);
    let t = dir.path().join("LLaMA.torrent");
    make_torrent(&root, &t, &["--piece-size", "16K"]);
    let _seed = aria2c_seed(&t, &src, 6881, true, &[]);
    let show = run([
        os("verify"),
        os("--torrent"),
        t.as_os_str(),
        src.as_os_str(),
        os("--json"),
    ]);
    assert_eq!(code(&show), 0);
    let o = run([
        os("manifest"),
        root.as_os_str(),
        os("--format"),
        os("torrent"),
        os("-o"),
        dir.path().join("again.torrent").as_os_str(),
        os("--piece-size"),
        os("16K"),
    ]);
    let magnet = stderr(&o)
        .lines()
        .find_map(|l| l.strip_prefix("magnet: "))
        .unwrap()
        .to_string();
    let out = dir.path().join("m");
    let (c, v, err) = download_json(
        &[
            magnet.as_ref(),
            os("--dir"),
            out.as_os_str(),
            os("--peer"),
            os("127.0.0.1:6881"),
            os("--no-dht"),
            os("--no-trackers"),
            os("--stall-timeout"),
            os("60"),
        ],
        120,
    );
    assert_eq!(c, 0, "{err}{v}");
    assert_loopback_only(&v);
    same_tree(&root, &out.join("LLaMA"), &ALL);
}

#[test]
fn a_killed_download_resumes_without_fetching_verified_pieces_again() {
    isolate();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let root = llama_release(&src, 8); // ~2.8 MB
    let t = dir.path().join("LLaMA.torrent");
    make_torrent(&root, &t, &["--piece-size", "16K"]);
    let out = dir.path().join("out");
    let args = |peer: &str| -> Vec<std::ffi::OsString> {
        vec![
            "download".into(),
            t.clone().into(),
            "--dir".into(),
            out.clone().into(),
            "--peer".into(),
            peer.into(),
            "--no-dht".into(),
            "--no-trackers".into(),
        ]
    };
    {
        // A slow seeder: ~256 KiB/s, so the kill lands mid-transfer.
        let _slow = aria2c_seed(&t, &src, 6881, true, &["--max-overall-upload-limit=256K"]);
        let mut child = Command::new(bin())
            .args(args("127.0.0.1:6881"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(4));
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
    }
    assert!(
        !out.join("LLaMA").exists(),
        "nothing may be under a final name yet"
    );
    assert!(out.join(".llama-tool-torrent").is_dir());
    let _fast = aria2c_seed(&t, &src, 6891, true, &[]);
    let mut a: Vec<std::ffi::OsString> = args("127.0.0.1:6891");
    a.remove(0);
    a.extend(["--stall-timeout".into(), "60".into()]);
    let a: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
    let (c, v, err) = download_json(&a, 120);
    assert_eq!(c, 0, "{err}{v}");
    let total = v["total_bytes"].as_u64().unwrap();
    let resumed = v["resumed_bytes"].as_u64().unwrap();
    let fetched = v["fetched_bytes"].as_u64().unwrap();
    assert!(resumed > 100_000, "nothing was resumed: {v}");
    assert!(
        fetched < total,
        "fetched {fetched} of {total}: verified pieces were downloaded again: {v}"
    );
    same_tree(&root, &out.join("LLaMA"), &ALL);
}

#[test]
fn a_lying_peer_never_puts_a_corrupt_file_under_its_final_name() {
    isolate();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let root = llama_release(&src, 1);
    let t = dir.path().join("LLaMA.torrent");
    make_torrent(&root, &t, &["--piece-size", "16K"]);
    // The liar's copy: one flipped byte in the 7B shard, served without checking.
    let liar_dir = dir.path().join("liar");
    std::fs::create_dir_all(&liar_dir).unwrap();
    let o = Command::new("cp")
        .arg("-r")
        .arg(&root)
        .arg(&liar_dir)
        .output()
        .unwrap();
    assert!(o.status.success());
    flip(&liar_dir.join("LLaMA/7B/consolidated.00.pth"), 70_000);
    let _liar = aria2c_seed(&t, &liar_dir, 6881, false, &[]);
    let out = dir.path().join("out");
    let base: Vec<&std::ffi::OsStr> = vec![
        t.as_os_str(),
        os("--dir"),
        out.as_os_str(),
        os("--no-dht"),
        os("--no-trackers"),
        os("--peer"),
        os("127.0.0.1:6881"),
    ];
    let mut a = base.clone();
    a.extend([os("--stall-timeout"), os("8")]);
    let (c, v, err) = download_json(&a, 120);
    assert_eq!(c, 2, "the liar alone cannot complete it: {err}{v}");
    assert!(err.contains("no verified progress"), "{err}");
    assert!(
        !out.join("LLaMA").exists(),
        "a file reached a final name from a lying peer"
    );
    // With an honest seeder as well, it completes and every byte is right.
    let _honest = aria2c_seed(&t, &src, 6891, true, &[]);
    let mut a = base.clone();
    a.extend([
        os("--peer"),
        os("127.0.0.1:6891"),
        os("--stall-timeout"),
        os("60"),
    ]);
    let (c, v, err) = download_json(&a, 120);
    assert_eq!(c, 0, "{err}{v}");
    same_tree(&root, &out.join("LLaMA"), &ALL);
}

/// `/usr/bin/python3` with libtorrent 2 (Debian's python3-libtorrent); fails naming the
/// install script when absent.
fn libtorrent_python() -> &'static str {
    let py = "/usr/bin/python3";
    let ok = Command::new(py)
        .args(["-c", "import libtorrent"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{py} cannot import libtorrent: run scripts/install-torrent-peers.sh (installs python3-libtorrent)"
    );
    py
}

const LT_MAKE: &str = r#"
import sys, libtorrent as lt
src, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
fs = lt.file_storage()
lt.add_files(fs, src)
flags = lt.create_torrent.v2_only if kind == "v2" else 0
ct = lt.create_torrent(fs, 16384, flags=flags)
import os
lt.set_piece_hashes(ct, os.path.dirname(src))
open(out, "wb").write(lt.bencode(ct.generate()))
"#;

const LT_HASHES: &str = r#"
import sys, libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
h = ti.info_hashes()
print(str(h.v1) if h.has_v1() else "-", str(h.v2) if h.has_v2() else "-")
"#;

#[test]
fn v2_and_hybrid_torrents_interoperate_with_libtorrent() {
    let py = libtorrent_python();
    let dir = tempfile::tempdir().unwrap();
    let root = llama_release(dir.path(), 1);
    for kind in ["v2", "hybrid"] {
        // libtorrent's torrent, verified by us.
        let t = dir.path().join(format!("lt-{kind}.torrent"));
        let o = Command::new(py)
            .args(["-c", LT_MAKE])
            .arg(&root)
            .arg(&t)
            .arg(kind)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let o = verify_torrent(&t, dir.path(), &[]);
        assert_eq!(code(&o), 0, "{kind}: {}{}", stdout(&o), stderr(&o));
        let victim = root.join("13B/consolidated.00.pth");
        flip(&victim, 40_000);
        let o = verify_torrent(&t, dir.path(), &[]);
        assert_eq!(code(&o), 1, "{kind}: {}", stdout(&o));
        let out = stdout(&o);
        assert!(
            out.lines().any(|l| l.starts_with("FAILED")
                && l.contains("13B/consolidated.00.pth")
                && l.contains("(file bytes 32768..49152)")),
            "{kind}: {out}"
        );
        flip(&victim, 40_000);
        // Our torrent, read by libtorrent (which checks the piece layers against the roots):
        // the same info-hashes.
        let ours = dir.path().join(format!("ours-{kind}.torrent"));
        let flag = format!("--{kind}");
        make_torrent(&root, &ours, &[&flag, "--piece-size", "16K"]);
        let o = Command::new(py)
            .args(["-c", LT_HASHES])
            .arg(&ours)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "libtorrent refused ours: {}",
            stderr(&o)
        );
        let lt_hashes = stdout(&o);
        let made = run([
            os("manifest"),
            root.as_os_str(),
            os("--format"),
            os("torrent"),
            os("-o"),
            ours.as_os_str(),
            os("--force"), // made above, for libtorrent
            flag.as_ref(),
            os("--piece-size"),
            os("16K"),
        ]);
        let v2 = stderr(&made)
            .lines()
            .find_map(|l| l.strip_prefix("info-hash (v2): "))
            .unwrap()
            .to_string();
        let lt_v2 = lt_hashes.split_whitespace().nth(1).unwrap();
        assert_eq!(lt_v2, v2, "v2 info-hash: libtorrent vs ours");
        if kind == "hybrid" {
            let v1 = stderr(&made)
                .lines()
                .find_map(|l| l.strip_prefix("info-hash (v1): "))
                .unwrap()
                .to_string();
            assert_eq!(lt_hashes.split_whitespace().next().unwrap(), v1);
        }
    }
}

#[test]
fn seed_refuses_a_folder_that_does_not_match_its_torrent() {
    isolate();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let root = llama_release(&src, 1);
    let t = dir.path().join("LLaMA.torrent");
    make_torrent(&root, &t, &["--piece-size", "16K"]);
    flip(&root.join("7B/consolidated.00.pth"), 5);
    let mut child = Command::new(bin())
        .arg("seed")
        .arg(&src)
        .arg("--torrent")
        .arg(&t)
        .args(["--no-dht", "--no-trackers", "--port", "6881"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait(&mut child, 60, "seed of a bad folder");
    assert_eq!(st.code(), Some(1));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        out.contains("FAILED") && out.contains("7B/consolidated.00.pth"),
        "{out}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", 6881)).is_err());
}
