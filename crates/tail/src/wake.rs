//! What wakes the engine thread: the one message type shared by the engine, the watcher and
//! the ackers (its own module so none of them imports another for it).

use tokio::sync::oneshot;

use crate::config::{DrainMode, DrainReport};

/// Messages that wake the engine thread.
#[derive(Debug)]
pub(crate) enum Wake {
    /// The watcher saw something (details in `FsSignals`).
    Fs,
    /// An ack freed budget while the engine was waiting for it.
    Acked,
    /// Begin draining; answer on the channel when done.
    Drain(DrainMode, oneshot::Sender<DrainReport>),
    /// The handle was dropped without draining: stop now.
    Abort,
}
