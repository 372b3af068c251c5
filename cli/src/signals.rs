//! Cleanup of temporary outputs on SIGINT, SIGTERM and SIGHUP.
//!
//! The release profile aborts on panic and a signal ends the process without unwinding, so
//! `Drop` never removes a half-written `.NAME.tmp-*` file. The handler itself only writes the
//! signal number to a pipe (the one async-signal-safe thing it needs); a plain thread reads
//! it, removes every temporary registered in [`llama_formats::atomic`], restores the default
//! disposition and re-raises the signal, so the exit status still says what ended us.
//! Written with `libc` alone (no new crate) because it is these few lines.

#[cfg(unix)]
mod imp {
    use std::sync::atomic::{AtomicI32, Ordering};

    static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_signal(sig: libc::c_int) {
        let fd = WRITE_FD.load(Ordering::Relaxed);
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }

    pub fn install() {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: fds is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        WRITE_FD.store(fds[1], Ordering::Relaxed);
        let read_fd = fds[0];
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut b = 0u8;
                loop {
                    // SAFETY: reading one byte into a live local.
                    let n = unsafe { libc::read(read_fd, (&mut b as *mut u8).cast(), 1) };
                    if n == 1 {
                        break;
                    }
                    if n == 0 {
                        return;
                    }
                }
                llama_formats::atomic::remove_registered();
                let sig = b as libc::c_int;
                // SAFETY: resetting to the default action and re-raising ends the process
                // with the signal's usual status; _exit is the fallback.
                unsafe {
                    libc::signal(sig, libc::SIG_DFL);
                    libc::raise(sig);
                    libc::_exit(128 + sig);
                }
            });
        if spawned.is_err() {
            return;
        }
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with a plain handler and an empty mask is valid.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    }
}

/// Install the handlers (once, at start-up).
pub fn install() {
    #[cfg(unix)]
    imp::install();
}
