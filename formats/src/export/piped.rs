//! An output file written by a helper thread while a second helper shows every byte, in
//! order, to an [`OutputTap`] (a hasher): the checksum of what a command writes is computed
//! from the bytes as they go out, with no second read of the output and no map of it. The
//! writers' headers are known before their data, so the stream is strictly sequential; the
//! only seek allowed is to the current position (`stream_position`).
//!
//! The producer fills 4 MiB buffers and hands each to the writer thread; the writer passes
//! every written buffer on to the hasher thread, which feeds it to the tap and returns it to
//! the producer's pool. So encoding, writing and hashing run at the same time, each on its
//! own buffer, and the tap costs the output no extra time unless hashing is the slowest of
//! the three. At most `IN_FLIGHT` (4) buffers exist, which bounds the memory whatever the
//! output size. Without a tap the writer returns buffers to the pool itself.

use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::atomic::AtomicFile;

/// Bytes per buffer handed to the helper thread.
pub(crate) const CHUNK: usize = 4 << 20;
/// Buffers in existence at most (one being filled, the rest queued, being written or being
/// hashed).
pub(crate) const IN_FLIGHT: usize = 4;

/// Sees every byte written to one output file, in order.
pub trait OutputTap: Send {
    /// The next bytes of the file.
    fn update(&mut self, bytes: &[u8]);
    /// Digests of the whole file as (algorithm name, lowercase hex), e.g. `("sha256", ..)`.
    fn finish(self: Box<Self>) -> Vec<(String, String)>;
}

/// Makes the tap for each output file a writer creates (`None`: no tap for this file).
pub trait TapFactory: Sync {
    /// A tap for the file that will appear at `path`.
    fn tap(&self, path: &Path) -> Option<Box<dyn OutputTap>>;
}

type Done = io::Result<(AtomicFile, Option<Box<dyn OutputTap>>)>;

/// A sequential output file fed through a writer thread; see the module docs.
pub struct PipedOutput {
    path: PathBuf,
    buf: Vec<u8>,
    pos: u64,
    allocated: usize,
    full: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<io::Result<AtomicFile>>>,
    hasher: Option<JoinHandle<Box<dyn OutputTap>>>,
}

impl PipedOutput {
    /// Write into `file` (already created under its temporary name) on a helper thread,
    /// feeding `tap` with the same bytes.
    pub fn new(file: AtomicFile, tap: Option<Box<dyn OutputTap>>) -> io::Result<PipedOutput> {
        let path = file.dest().to_path_buf();
        // Every channel can hold every buffer, so no send ever waits for long.
        let (full_tx, full_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        // Where the writer sends a written buffer: the hasher, or straight back to the pool.
        let (written_tx, hasher) = match tap {
            Some(tap) => {
                let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
                let h = std::thread::Builder::new()
                    .name("output-hasher".into())
                    .spawn(move || hash_loop(rx, tap, empty_tx))?;
                (tx, Some(h))
            }
            None => (empty_tx, None),
        };
        let worker = std::thread::Builder::new()
            .name("output-writer".into())
            .spawn(move || -> io::Result<AtomicFile> {
                let mut file = file;
                while let Ok(buf) = full_rx.recv() {
                    file.write_all(&buf)?;
                    // The next stage may have stopped waiting for buffers; that is fine.
                    let _ = written_tx.send(buf);
                }
                Ok(file)
            });
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                // The hasher's input is gone with the closure; let it stop.
                if let Some(h) = hasher {
                    let _ = h.join();
                }
                return Err(e);
            }
        };
        Ok(PipedOutput {
            path,
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            allocated: 1,
            full: Some(full_tx),
            empty: empty_rx,
            worker: Some(worker),
            hasher,
        })
    }

    /// The final path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helpers' result once they have stopped (the writer's error when it failed).
    fn join(&mut self) -> Done {
        self.full = None;
        let panicked = |what: &str| {
            io::Error::other(format!(
                "{}: output {what} thread panicked",
                self.path.display()
            ))
        };
        let written = match self.worker.take() {
            Some(h) => h.join().unwrap_or_else(|_| Err(panicked("writer"))),
            None => Err(io::Error::other(format!(
                "{}: output already finished",
                self.path.display()
            ))),
        };
        // The writer has dropped its sender, so the hasher stops once it has seen the rest.
        let tap = match self.hasher.take() {
            Some(h) => Some(h.join().map_err(|_| panicked("hasher"))?),
            None => None,
        };
        Ok((written?, tap))
    }

    /// The error to report when the helper is gone: its own, or a generic one.
    fn worker_error(&mut self) -> io::Error {
        match self.join() {
            Err(e) => e,
            Ok(_) => io::Error::other(format!(
                "{}: output writer stopped early",
                self.path.display()
            )),
        }
    }

    /// Hand the current buffer to the helper and take an empty one.
    fn ship(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = if self.allocated < IN_FLIGHT {
            self.allocated += 1;
            Vec::with_capacity(CHUNK)
        } else {
            match self.empty.recv() {
                Ok(mut b) => {
                    b.clear();
                    b
                }
                Err(_) => return Err(self.worker_error()),
            }
        };
        let full = std::mem::replace(&mut self.buf, next);
        let sent = match &self.full {
            Some(tx) => tx.send(full).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.worker_error())
        }
    }

    /// Write what is buffered, wait for the helper, and hand back the file (still under its
    /// temporary name, data written but not synced) and the tap's digests.
    pub fn finish(mut self) -> io::Result<(AtomicFile, Vec<(String, String)>)> {
        self.ship()?;
        let (file, tap) = self.join()?;
        Ok((file, tap.map(|t| t.finish()).unwrap_or_default()))
    }
}

impl Write for PipedOutput {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.pos += n as u64;
        if self.buf.len() >= CHUNK {
            self.ship()?;
        }
        Ok(n)
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.write(data)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Buffers stay queued for the helper; [`PipedOutput::finish`] waits for them.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for PipedOutput {
    /// Only the current position can be asked for: the stream is sequential.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let here = match to {
            SeekFrom::Current(0) => true,
            SeekFrom::Start(p) => p == self.pos,
            _ => false,
        };
        if here {
            Ok(self.pos)
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{}: a hashed output is written sequentially; cannot seek back",
                    self.path.display()
                ),
            ))
        }
    }
}

impl Drop for PipedOutput {
    /// An unfinished output: stop the helper, which drops the temporary file.
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.join();
        }
    }
}

/// The hasher thread: feed each written buffer to `tap`, then return it to the producer.
fn hash_loop(
    written: Receiver<Vec<u8>>,
    mut tap: Box<dyn OutputTap>,
    empty: SyncSender<Vec<u8>>,
) -> Box<dyn OutputTap> {
    while let Ok(buf) = written.recv() {
        tap.update(&buf);
        // The producer may have stopped waiting for buffers; that is fine.
        let _ = empty.send(buf);
    }
    tap
}

/// Create the output `path` (under its temporary name) as a [`PipedOutput`] with the tap
/// `taps` makes for it.
pub(crate) fn create_piped(
    path: &Path,
    taps: Option<&dyn TapFactory>,
) -> Result<PipedOutput, super::ExportError> {
    let file = AtomicFile::create(path).map_err(super::io_at(path))?;
    PipedOutput::new(file, taps.and_then(|t| t.tap(path))).map_err(super::io_at(path))
}

/// Finish a writer's [`PipedOutput`], move it to its final name and record it (and its
/// digests) in `summary`. Returns the final path.
pub fn commit_piped(
    out: PipedOutput,
    summary: &mut super::ExportSummary,
) -> Result<PathBuf, super::ExportError> {
    let path = out.path().to_path_buf();
    let (file, digests) = out.finish().map_err(super::io_at(&path))?;
    let done = file.commit().map_err(super::io_at(&path))?;
    if !digests.is_empty() {
        summary.digests.insert(done.clone(), digests);
    }
    summary.files.push(done.clone());
    Ok(done)
}

/// What every file of a multi-file export (the HF folder's safetensors files, the Meta
/// shards) is written with: one encoder and one summary across the files, each file piped
/// through the tap `taps` makes for it.
pub(crate) struct PipedFiles<'a> {
    pub ck: &'a crate::checkpoint::Checkpoint,
    pub taps: Option<&'a dyn TapFactory>,
    pub progress: &'a dyn super::Progress,
    pub enc: super::pipeline::Encoder,
    pub summary: super::ExportSummary,
}

impl<'a> PipedFiles<'a> {
    pub(crate) fn new(
        ck: &'a crate::checkpoint::Checkpoint,
        taps: Option<&'a dyn TapFactory>,
        progress: &'a dyn super::Progress,
    ) -> Self {
        PipedFiles {
            ck,
            taps,
            progress,
            enc: super::pipeline::Encoder::default(),
            summary: super::ExportSummary::default(),
        }
    }

    /// Write the file `path` holding `jobs`: `new` makes the format's writer over the
    /// output and the jobs' headers, every job streams through it, and the file is moved
    /// to its final name and recorded in the summary.
    pub(crate) fn write<W>(
        &mut self,
        path: &Path,
        jobs: &[super::pipeline::Job<super::pipeline::Part>],
        new: impl FnOnce(PipedOutput, Vec<crate::tensor::TensorInfo>) -> Result<W, super::ExportError>,
    ) -> Result<PathBuf, super::ExportError>
    where
        W: super::pipeline::TensorWriter<Output = PipedOutput>,
    {
        let infos = jobs.iter().map(|j| j.out.clone()).collect();
        let mut w = new(create_piped(path, self.taps)?, infos)?;
        super::pipeline::write_tensors(
            self.ck,
            jobs,
            &mut w,
            &mut self.enc,
            &mut self.summary,
            &mut super::advance(self.progress),
        )?;
        commit_piped(w.finish()?, &mut self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A tap recording everything it saw.
    struct Record(Arc<Mutex<Vec<u8>>>);

    impl OutputTap for Record {
        fn update(&mut self, bytes: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }
        fn finish(self: Box<Self>) -> Vec<(String, String)> {
            vec![("len".into(), self.0.lock().unwrap().len().to_string())]
        }
    }

    #[test]
    fn the_tap_sees_exactly_the_file_bytes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut out = PipedOutput::new(
            AtomicFile::create(&dest).unwrap(),
            Some(Box::new(Record(seen.clone()))),
        )
        .unwrap();
        let data: Vec<u8> = (0..CHUNK * IN_FLIGHT * 2 + 12_345)
            .map(|i| (i * 7 % 253) as u8)
            .collect();
        for piece in data.chunks(1_000_003) {
            out.write_all(piece).unwrap();
        }
        assert_eq!(out.stream_position().unwrap(), data.len() as u64);
        assert!(out.seek(SeekFrom::Start(0)).is_err());
        let (file, digests) = out.finish().unwrap();
        assert!(!dest.exists(), "final name only after commit");
        file.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        assert_eq!(*seen.lock().unwrap(), data);
        assert_eq!(digests, vec![("len".to_string(), data.len().to_string())]);
    }

    #[test]
    fn without_a_tap_the_file_has_exactly_the_bytes_written() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut out = PipedOutput::new(AtomicFile::create(&dest).unwrap(), None).unwrap();
        let data: Vec<u8> = (0..CHUNK * IN_FLIGHT * 2 + 777)
            .map(|i| (i * 11 % 251) as u8)
            .collect();
        for piece in data.chunks(3_000_017) {
            out.write_all(piece).unwrap();
        }
        let (file, digests) = out.finish().unwrap();
        assert!(digests.is_empty());
        file.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), data);
    }

    #[test]
    fn dropping_an_unfinished_output_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        for tapped in [false, true] {
            let tap: Option<Box<dyn OutputTap>> =
                tapped.then(|| Box::new(Record(Arc::default())) as _);
            let mut out = PipedOutput::new(AtomicFile::create(&dest).unwrap(), tap).unwrap();
            out.write_all(&vec![1u8; CHUNK * IN_FLIGHT * 2]).unwrap();
            drop(out);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }
}
