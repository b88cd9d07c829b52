//! The tool's errors: a one-line message and the exit code that goes with it
//! (1 for a failure at run time, 2 for a wrong command line).

use std::fmt;
use std::io;
use std::path::Path;

/// Exit code of a failure at run time.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a usage error: a wrong option, an unknown namespace name.
pub const EXIT_USAGE: i32 = 2;

/// A failure, with a message meant for the user.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// The command line is wrong (exit code 2).
    Usage(String),
    /// Something failed while running (exit code 1).
    Failed(String),
}

impl Error {
    /// The exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Failed(_) => EXIT_FAILURE,
        }
    }

    /// A failure of `verb` on `path`, e.g. "cannot read /dev/kmsg: ...",
    /// with a hint for the usual causes.
    pub fn io(verb: &str, path: &Path, e: &io::Error) -> Self {
        let hint = match e.kind() {
            io::ErrorKind::PermissionDenied => " (run as root)",
            _ => "",
        };
        Error::Failed(format!(
            "cannot {verb} {}: {}{hint}",
            path.display(),
            describe(e)
        ))
    }
}

/// An I/O error's text without the " (os error N)" that std appends.
pub fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) | Error::Failed(msg) => f.write_str(msg),
        }
    }
}

/// The tool's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A usage error from a message.
pub fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_the_path_and_hint_at_root() {
        let e = io::Error::from_raw_os_error(13);
        let err = Error::io("write", Path::new("/sys/x"), &e);
        assert_eq!(
            err.to_string(),
            "cannot write /sys/x: Permission denied (run as root)"
        );
        assert_eq!(err.exit_code(), 1);
        assert_eq!(usage("bad").exit_code(), 2);
    }
}
