//! The one place where Rust errors become Python exceptions, so that every
//! function raises the same exception for the same kind of failure:
//!
//! * bad input (`Error::Input`, `Error::Setting`) → `ValueError`, with the
//!   message the CLI prints (file:line or file:row first);
//! * a file that cannot be read or written (`Error::InputFile`, `Error::Io`)
//!   → `OSError`, built from the errno so that Python picks the subclass
//!   (`FileNotFoundError`, `PermissionError`, …) and sets `filename`;
//! * anything else (no GPU, a report failure, an internal error) →
//!   `RuntimeError`.

use std::path::Path;

use arrow::error::ArrowError;
use gpubound::Error;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// The Python exception for a library error.
pub fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Input { .. } | Error::Setting(_) => PyValueError::new_err(message),
        Error::InputFile { path, cause } | Error::Io { path, cause } => {
            os_error(&path, &cause, message)
        }
        Error::Gpu(_) | Error::Report(_) | Error::Internal(_) => PyRuntimeError::new_err(message),
    }
}

/// An Arrow stream that cannot be read (a producer's error, a malformed
/// array): the data handed in is at fault, as with a bad log.
pub fn arrow_to_py(e: ArrowError) -> PyErr {
    match e {
        ArrowError::IoError(message, cause) => {
            os_error(Path::new(""), &cause, format!("Arrow: {message}"))
        }
        e => PyValueError::new_err(format!("Arrow: {e}")),
    }
}

/// `OSError(errno, strerror, filename)`, as Python's own `open` raises it:
/// CPython maps the errno to the subclass (ENOENT → FileNotFoundError), and
/// its message reads "[Errno 2] No such file or directory: 'path'".
/// Without an errno, the library's whole message.
fn os_error(path: &Path, cause: &std::io::Error, message: String) -> PyErr {
    let Some(errno) = cause.raw_os_error() else {
        return PyOSError::new_err(message);
    };
    // Rust writes "No such file or directory (os error 2)".
    let text = cause.to_string();
    let strerror = text
        .strip_suffix(&format!(" (os error {errno})"))
        .unwrap_or(&text)
        .to_string();
    if path.as_os_str().is_empty() {
        PyOSError::new_err((errno, strerror))
    } else {
        PyOSError::new_err((errno, strerror, path.display().to_string()))
    }
}

/// `.py()?` on a library result: the error converted by [`to_py`].
pub trait IntoPyResult<T> {
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for gpubound::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}

impl<T> IntoPyResult<T> for Result<T, ArrowError> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(arrow_to_py)
    }
}
