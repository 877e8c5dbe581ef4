//! Outputs still being written, and how to undo them when the run stops
//! early: on an error (the `Pending` guard's drop), on SIGINT, SIGTERM or
//! SIGHUP (a watcher thread, exit 128 + the signal's number), or when the
//! reader of a pipe has gone (`gpubound audit log | head`: quiet exit 0).
//!
//! The registry is a mutex-guarded list: an output is registered in the same
//! critical section that creates it, and completed in the one that renames it
//! into place, so an interruption sees every temporary file, and never one
//! that has just become the report.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// What undoes an unfinished output.
pub(crate) enum Undo {
    /// A temporary file beside the destination.
    Remove(PathBuf),
    /// A regular file given as standard output, written in place: cut back
    /// to its length before the run (`file` shares descriptor 1's file).
    CutBack { file: File, len: u64 },
}

impl Undo {
    /// On a signal this runs on the watcher thread while the main thread may
    /// be anywhere: plain system calls, no lock but the registry's.
    fn run(&self) {
        match self {
            Undo::Remove(path) => {
                let _ = std::fs::remove_file(path);
            }
            Undo::CutBack { file, len } => {
                // Later writes of the main thread to standard output go to
                // /dev/null, so they cannot land after the cut.
                if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                    use std::os::fd::AsRawFd;
                    // SAFETY: dup2 on two descriptors this process owns
                    unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
                }
                let _ = file.set_len(*len);
            }
        }
    }
}

static PENDING: Mutex<Vec<(u64, Undo)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn pending() -> MutexGuard<'static, Vec<(u64, Undo)>> {
    // a panic elsewhere must not stop the cleanup
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// An output registered for undoing; undone on drop unless completed.
pub(crate) struct Pending {
    id: u64,
}

/// Runs `make` (which creates the output) and registers what undoes it, in
/// one critical section.
pub(crate) fn register<T, E>(
    make: impl FnOnce() -> Result<(T, Undo), E>,
) -> Result<(T, Pending), E> {
    let mut list = pending();
    let (value, undo) = make()?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    list.push((id, undo));
    Ok((value, Pending { id }))
}

impl Pending {
    /// The output is whole: runs `finish` (e.g. the rename into place) and
    /// forgets the output, in one critical section. On an error of `finish`,
    /// the output is undone.
    pub(crate) fn complete<E>(self, finish: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let mut list = pending();
        let result = finish();
        if let Some(i) = list.iter().position(|(id, _)| *id == self.id) {
            let (_, undo) = list.swap_remove(i);
            if result.is_err() {
                undo.run();
            }
        }
        drop(list);
        std::mem::forget(self);
        result
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut list = pending();
        if let Some(i) = list.iter().position(|(id, _)| *id == self.id) {
            list.swap_remove(i).1.run();
        }
    }
}

/// Undoes every unfinished output and ends the process with `code`, at
/// once: no destructors, no atexit handlers (a GPU driver's could wait for
/// work the main thread has in flight).
fn undo_all_and_exit(code: i32) -> ! {
    let list = pending();
    for (_, undo) in list.iter() {
        undo.run();
    }
    // SAFETY: _exit ends the process; the lock is never released
    unsafe { libc::_exit(code) }
}

/// The reader of a pipe or stream has gone: stop quietly, as a command
/// killed by SIGPIPE would, but without leaving temporary files. Exit 0,
/// as ripgrep does: `| head` is the consumer's choice, not a failure.
pub(crate) fn consumer_gone() -> ! {
    undo_all_and_exit(0)
}

/// Write end of the self-pipe the signal handler writes the signal to.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let byte = sig as u8;
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    // SAFETY: write(2) is async-signal-safe; one byte to a pipe we own
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that undo unfinished
/// outputs and exit with 128 + the signal's number (130, 143, 129), as a
/// shell reports a command killed by it. Signals the parent set to be
/// ignored (`nohup`, background jobs) stay ignored. Call once, early.
pub fn undo_on_signals() -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    SIGNAL_PIPE.store(fds[1], Ordering::Relaxed);
    let read_fd = fds[0];
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut byte = 0u8;
            // SAFETY: reads one byte into a local
            let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
            if n == 1 {
                undo_all_and_exit(128 + i32::from(byte));
            }
            if n == 0 {
                return;
            }
        })?;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction with a handler that only calls write(2)
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}
