//! The emitter passed into the engine: it hears about every fault and truncation as it
//! happens, so the consumer's metrics count them without polling. Gauges (files open,
//! in-flight bytes, checkpoint lag) are read on demand through [`crate::TailProbe`].

/// A kind of tailing fault. Each is logged at WARN with the path, counted, and retried; none
/// stops the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A file could not be opened (permissions, descriptors exhausted).
    Open,
    /// A read or seek failed.
    Read,
    /// A checkpoint could not be written (a full disk, say).
    CheckpointWrite,
    /// The saved checkpoint could not be loaded at start (files were read from the start).
    CheckpointLoad,
    /// A directory under a glob root could not be scanned.
    Discovery,
    /// inotify failed or lost events (polling covers it).
    Watch,
    /// A matching symlink points outside every glob root and was not followed
    /// (`follow_symlinks_outside_roots` is off).
    SymlinkOutsideRoots,
}

impl Fault {
    /// Every kind.
    pub const ALL: [Fault; 7] = [
        Self::Open,
        Self::Read,
        Self::CheckpointWrite,
        Self::CheckpointLoad,
        Self::Discovery,
        Self::Watch,
        Self::SymlinkOutsideRoots,
    ];

    /// A short name for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Read => "read",
            Self::CheckpointWrite => "checkpoint_write",
            Self::CheckpointLoad => "checkpoint_load",
            Self::Discovery => "discovery",
            Self::Watch => "watch",
            Self::SymlinkOutsideRoots => "symlink_outside_roots",
        }
    }
}

/// Receives the engine's events; called on the engine's thread (or inotify's), so keep it
/// cheap. Every method has an empty default.
pub trait TailEmitter: Send + Sync + std::fmt::Debug {
    /// A fault happened.
    fn fault(&self, kind: Fault) {
        let _ = kind;
    }

    /// A file was truncated in place (copytruncate rotation) and is read again from 0.
    fn truncated(&self) {}
}

/// Hears nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEmitter;

impl TailEmitter for NoEmitter {}
