//! The lab's error type: every failure says which step failed and on what.

use std::fmt;
use std::io;
use std::path::Path;

/// A failure of the lab, with a message meant for the user.
#[derive(Debug)]
pub enum Error {
    /// An I/O step failed; `step` says what was being done.
    Io {
        /// What was being done, e.g. "failed to spawn QEMU".
        step: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The command line is wrong.
    Usage(String),
    /// Something the lab needs is missing or unusable.
    Setup(String),
    /// The VM ran, and its verdict is failure.
    Verdict(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { step, source } => write!(f, "{step}: {source}"),
            Error::Usage(msg) => write!(f, "{msg} (try 'nsfilter-lab --help')"),
            Error::Setup(msg) | Error::Verdict(msg) => f.write_str(msg),
        }
    }
}

impl Error {
    /// The program's exit status for this error (see `nsfilter-lab
    /// --help`): 1 when the VM ran and its verdict is failure, 2 for a
    /// wrong command line, 3 when the lab could not run (set-up, I/O).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Verdict(_) => 1,
            Error::Usage(_) => 2,
            Error::Setup(_) | Error::Io { .. } => 3,
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The lab's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the step that failed to an I/O error.
pub trait Context<T> {
    /// Says what was being done when the error happened.
    fn step(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            step: what(),
            source,
        })
    }
}

/// "failed to read /path" style messages.
pub fn on(verb: &str, path: &Path) -> impl FnOnce() -> String {
    let msg = format!("failed to {verb} {}", path.display());
    move || msg
}
