//! Errors that stop the engine from starting. Everything that can go wrong while running is
//! logged, counted in [`super::TailStats`], and survived.

/// Why [`super::start`] refused a configuration.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// A `--path` glob does not parse.
    #[error("invalid path glob {pattern:?}: {source}")]
    InvalidGlob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    /// `--multiline` is neither a preset nor a valid regex.
    #[error("invalid multiline start pattern {pattern:?}: {source}")]
    InvalidMultiline {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    /// A setting is out of range.
    #[error("invalid tail configuration: {0}")]
    InvalidConfig(String),
    /// Another engine holds the data directory's lock (one engine per directory).
    #[error("data directory {0} is in use by another firetail engine")]
    DataDirInUse(std::path::PathBuf),
    /// The engine thread could not be started.
    #[error("cannot start the tail engine thread: {0}")]
    Spawn(#[source] std::io::Error),
}
