//! Library errors. Every input error names where it came from (file and line),
//! so that the binary can print one clear message and exit with the input code.

use std::path::PathBuf;

/// Where in the input a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    /// 1-based line number (a columnar log: 1-based row over the whole
    /// input); `None` when the problem concerns the whole file.
    pub line: Option<usize>,
    /// Set for a columnar log (Parquet, Arrow), whose `line` is a row.
    pub row: Option<RowPlace>,
}

/// A row of a columnar log: Parquet files also name its row group, so that
/// the row can be found with tools that read one group at a time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowPlace {
    /// (1-based row group, number of groups, 1-based row in the group).
    pub row_group: Option<(usize, usize, usize)>,
    /// For a log kept in several files: the file that holds the row (the
    /// row group is that file's).
    pub file: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, &self.row) {
            (
                Some(row),
                Some(RowPlace {
                    row_group: Some((g, n, r)),
                    file,
                }),
            ) => {
                let within = file.as_ref().map(|f| format!("{f}, ")).unwrap_or_default();
                write!(
                    f,
                    "{}: row {row} ({within}row group {g} of {n}, row {r} in it)",
                    self.file
                )
            }
            (Some(row), Some(_)) => write!(f, "{}: row {row}", self.file),
            (Some(line), None) => write!(f, "{}:{}", self.file, line),
            (None, _) => write!(f, "{}", self.file),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log, model or hypothesis file is not what the format says.
    #[error("{location}: {message}")]
    Input { location: Location, message: String },

    /// A command-line setting is out of range (α outside (0,1], no threshold, …).
    #[error("invalid setting: {0}")]
    Setting(String),

    /// The log, `--model` file or hypothesis file cannot be opened or read
    /// (missing, unreadable): bad input, like its content being wrong.
    #[error("{path}: {cause}")]
    InputFile {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// Writing an output, or a system failure. The cause is part of the
    /// message and not a `source()`: printed with its chain (`{:#}`), it
    /// would appear twice.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// No usable GPU adapter, or the device failed.
    #[error("GPU: {0}")]
    Gpu(String),

    #[error("writing the report: {0}")]
    Report(String),

    /// A result broke an invariant the computation guarantees (an estimate
    /// that is not a number in [0, 1], an empty plausible set): a bug, not
    /// the input's fault.
    #[error("internal error (please report it): {0}")]
    Internal(String),
}

impl Error {
    pub fn input(file: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        Error::Input {
            location: Location {
                file: file.into(),
                line,
                row: None,
            },
            message: message.into(),
        }
    }

    /// Bad input at a row of a columnar log.
    pub fn input_row(
        file: impl Into<String>,
        row: usize,
        place: RowPlace,
        message: impl Into<String>,
    ) -> Self {
        Error::Input {
            location: Location {
                file: file.into(),
                line: Some(row),
                row: Some(place),
            },
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }

    /// An input file that cannot be opened or read.
    pub fn input_file(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::InputFile {
            path: path.into(),
            cause,
        }
    }

    /// True for errors caused by what the user gave (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Input { .. } | Error::InputFile { .. } | Error::Setting(_)
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
