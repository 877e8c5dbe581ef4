//! Where a report (or a simulated log) is written, so that it arrives whole
//! or not at all, and never over an input.
//!
//! - A path naming a regular file, or nothing yet: the output is written to
//!   a temporary file beside it (beside the link's target, for a symbolic
//!   link, which stays a link), given the replaced file's mode and owner, and
//!   renamed into place once complete. A failed or interrupted run leaves the
//!   previous file as it was.
//! - Standard output, or a path naming a pipe, a device or a socket: written
//!   as it is produced, nothing spooled. A consumer sees a partial output
//!   only when the run fails, and the exit status says so.
//! - Standard output redirected to a regular file (`> out.jsonl`,
//!   `>> all.jsonl`): written in place, and cut back to its length before the
//!   run if the run fails or is interrupted.
//!
//! Every check that can fail on the destination alone (a folder, a missing
//! folder, a folder without write permission) is made by `Destination::new`,
//! before the work.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{BufWriter, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::unfinished::{self, Pending, Undo};
use crate::{Error, Result};

pub struct Destination {
    kind: Kind,
    /// What the user called it, for messages.
    name: String,
    /// Which file this is, for `refuse_overlaps`; `None` unless a regular
    /// file (or one to be created): a terminal, `/dev/null` or a pipe takes
    /// any number of outputs, and stdin and stdout may be one socket.
    identity: Option<Identity>,
}

enum Kind {
    Replace {
        temp: PathBuf,
        target: PathBuf,
        file: File,
        pending: Pending,
    },
    Stream {
        file: File,
    },
    /// `cut_back` when standard output is a regular file.
    Stdout {
        cut_back: Option<Pending>,
    },
}

/// A file by device and inode (links and other names of it compare equal),
/// or the canonical path of one not created yet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    File { dev: u64, ino: u64 },
    NotYet(PathBuf),
}

fn identity_of(m: &Metadata) -> Option<Identity> {
    m.is_file().then(|| Identity::File {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// The metadata of an open descriptor of this process (0 or 1).
fn fd_metadata(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<(File, Metadata)> {
    let file = File::from(fd.try_clone_to_owned()?);
    let m = file.metadata()?;
    Ok((file, m))
}

impl Destination {
    /// Checks the destination and prepares it; `None` is standard output.
    pub fn new(target: Option<&Path>) -> Result<Self> {
        match target {
            None => Ok(Self::stdout()),
            Some(path) => Self::path(path),
        }
    }

    fn stdout() -> Self {
        use std::os::fd::AsFd;
        let stdout = std::io::stdout();
        let (identity, cut_back) = match fd_metadata(stdout.as_fd()) {
            Ok((file, m)) if m.is_file() => {
                let len = start_of(&file, &m);
                let Ok(((), pending)) = unfinished::register(|| {
                    Ok::<_, std::convert::Infallible>(((), Undo::CutBack { file, len }))
                });
                (identity_of(&m), Some(pending))
            }
            Ok((_, m)) => (identity_of(&m), None),
            // closed: writing will fail, and say so
            Err(_) => (None, None),
        };
        Destination {
            kind: Kind::Stdout { cut_back },
            name: "standard output".into(),
            identity,
        }
    }

    fn path(given: &Path) -> Result<Self> {
        let name = given.display().to_string();
        match std::fs::metadata(given) {
            Ok(m) if m.is_dir() => Err(Error::Setting(format!(
                "{name}: is a folder; give the name of a file to write"
            ))),
            Ok(m) if m.is_file() => {
                let target = std::fs::canonicalize(given).map_err(|e| Error::io(given, e))?;
                let identity = identity_of(&m);
                Self::replace(name, target, Some(&m), identity)
            }
            // a pipe, device or socket: it cannot be replaced, only written to
            Ok(m) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(given)
                    .map_err(|e| Error::io(given, e))?;
                Ok(Destination {
                    kind: Kind::Stream { file },
                    name,
                    identity: identity_of(&m),
                })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                // a new file, or the missing target of a symbolic link
                let target = resolve_links(given)?;
                let folder = folder_of(&target);
                match std::fs::metadata(folder) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(Error::Setting(format!(
                            "{name}: {} is not a folder",
                            folder.display()
                        )))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        return Err(Error::io(folder, e))
                    }
                    Err(_) => {
                        return Err(Error::Setting(format!(
                            "{name}: the folder {} does not exist",
                            folder.display()
                        )))
                    }
                }
                let canonical = std::fs::canonicalize(folder).map_err(|e| Error::io(folder, e))?;
                let identity = target
                    .file_name()
                    .map(|f| Identity::NotYet(canonical.join(f)));
                Self::replace(name, target, None, identity)
            }
            Err(e) => Err(Error::io(given, e)),
        }
    }

    /// A temporary file beside `target`, registered for removal.
    fn replace(
        name: String,
        target: PathBuf,
        existing: Option<&Metadata>,
        identity: Option<Identity>,
    ) -> Result<Self> {
        let folder = folder_of(&target);
        let ((temp, file), pending) = unfinished::register(|| {
            let mut b = tempfile::Builder::new();
            b.prefix(".gpubound-report-");
            // A new report is an ordinary readable file (less the umask); a
            // replaced one is never, even briefly, more open than before.
            b.permissions(std::fs::Permissions::from_mode(
                existing.map_or(0o644, |m| m.mode() & 0o777),
            ));
            let created = b.tempfile_in(folder).map_err(|e| {
                Error::io(
                    folder,
                    std::io::Error::new(e.kind(), format!("cannot create a file here: {e}")),
                )
            })?;
            let (file, temp) = created.keep().map_err(|e| Error::io(folder, e.error))?;
            Ok::<_, Error>(((temp.clone(), file), Undo::Remove(temp)))
        })?;
        if let Some(m) = existing {
            // the owner where allowed, then the exact mode (creation is
            // subject to the umask; chown may clear set-id bits)
            let _ = std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()));
            file.set_permissions(m.permissions())
                .map_err(|e| Error::io(&temp, e))?;
        }
        Ok(Destination {
            kind: Kind::Replace {
                temp,
                target,
                file,
                pending,
            },
            name,
            identity,
        })
    }

    /// What the user called it: the path given, or "standard output".
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn writer(&self) -> Result<BufWriter<Sink>> {
        let clone = |f: &File, what: &Path| f.try_clone().map_err(|e| Error::io(what, e));
        let sink = match &self.kind {
            Kind::Replace { temp, file, .. } => Sink {
                out: Out::File(clone(file, temp)?),
                stream: false,
                name: self.name.clone(),
            },
            Kind::Stream { file } => Sink {
                out: Out::File(clone(file, Path::new(&self.name))?),
                stream: true,
                name: self.name.clone(),
            },
            // through descriptor 1 itself, which an interruption points at
            // /dev/null before cutting a redirected file back
            Kind::Stdout { .. } => Sink {
                out: Out::Stdout(std::io::stdout()),
                stream: true,
                name: self.name.clone(),
            },
        };
        Ok(BufWriter::with_capacity(1 << 16, sink))
    }

    /// The output is complete (its writers flushed): moves it into place.
    pub fn commit(self) -> Result<()> {
        match self.kind {
            Kind::Replace {
                temp,
                target,
                file,
                pending,
            } => {
                // on the disk before it replaces anything
                file.sync_all().map_err(|e| Error::io(&temp, e))?;
                pending
                    .complete(|| std::fs::rename(&temp, &target).map_err(|e| Error::io(&target, e)))
            }
            Kind::Stream { .. } => Ok(()),
            Kind::Stdout { cut_back } => {
                let flushed = std::io::stdout().flush();
                if flushed
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
                {
                    unfinished::consumer_gone();
                }
                flushed.map_err(|e| Error::io("<stdout>", e))?;
                match cut_back {
                    Some(p) => p.complete(|| Ok(())),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Refuses outputs that are one of the run's inputs (a report written over
/// the log it audits), or the same file as another output (only the last
/// would remain). `inputs` are (what, path), `None` for standard input.
pub fn refuse_overlaps(
    outputs: &[(&str, &Destination)],
    inputs: &[(&str, Option<&Path>)],
) -> Result<()> {
    for (i, (flag, out)) in outputs.iter().enumerate() {
        let Some(id) = &out.identity else { continue };
        if let Some((other, _)) = outputs[..i]
            .iter()
            .find(|(_, d)| d.identity.as_ref() == Some(id))
        {
            return Err(Error::Setting(format!(
                "{other} and {flag} name the same file ({}): give each output its own",
                out.name
            )));
        }
        for (what, path) in inputs {
            let m = match path {
                Some(p) => std::fs::metadata(p),
                None => {
                    use std::os::fd::AsFd;
                    fd_metadata(std::io::stdin().as_fd()).map(|(_, m)| m)
                }
            };
            // an input that cannot be read fails when it is opened
            if m.is_ok_and(|m| identity_of(&m).as_ref() == Some(id)) {
                let input = path.map_or("standard input".into(), |p| p.display().to_string());
                return Err(Error::Setting(format!(
                    "{flag} {} is {what} {input}: an output never replaces an input",
                    out.name
                )));
            }
        }
    }
    Ok(())
}

/// Writes `text` to standard output (the summary); a reader that has gone
/// ends the run quietly, as for the report.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => unfinished::consumer_gone(),
        other => other.map_err(|e| Error::io("<stdout>", e)),
    }
}

/// Where a `Destination`'s writer writes.
pub struct Sink {
    out: Out,
    /// A pipe, device or socket, whose reader may go away.
    stream: bool,
    /// the destination as the user named it, for error messages
    name: String,
}

enum Out {
    File(File),
    Stdout(std::io::Stdout),
}

impl Sink {
    fn check<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if self.stream
            && r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        {
            unfinished::consumer_gone();
        }
        // say which output failed (a full disk, a device that refuses writes)
        r.map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", self.name)))
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = match &mut self.out {
            Out::File(f) => f.write(buf),
            Out::Stdout(s) => s.write(buf),
        };
        self.check(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = match &mut self.out {
            Out::File(f) => f.flush(),
            Out::Stdout(s) => s.flush(),
        };
        self.check(r)
    }
}

/// Where the run's output begins in a regular file given as standard
/// output: its end when opened for appending (`>>`), else the offset.
fn start_of(file: &File, m: &Metadata) -> u64 {
    // SAFETY: F_GETFL on a descriptor we own
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if flags >= 0 && flags & libc::O_APPEND != 0 {
        m.len()
    } else {
        let mut f = file;
        f.stream_position().unwrap_or(0)
    }
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Follows symbolic links of the last component, relative ones from their
/// own folder, to the path a rename must replace (the target may not exist).
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
                p = folder_of(&p).join(to);
            }
            _ => return Ok(p),
        }
    }
    Err(Error::Setting(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}
