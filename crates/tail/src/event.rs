//! What the engine hands to its consumer: events with exact file positions, in order per file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::ack::AckCell;
pub use super::framing::{Cut, Part};
pub use super::identity::FileId;

/// The file an event came from. Shared by all events of one file read; cheap to clone.
#[derive(Debug)]
pub struct SourceFile {
    /// Device and inode.
    pub id: FileId,
    /// Path the file had when it was discovered (a renamed file keeps the name it was
    /// discovered under until it is seen again under a matching name).
    pub path: PathBuf,
    /// Container name: `container_name` from the config, else the first directory under the
    /// watch root, else empty.
    pub container: String,
    ack: AckTarget,
}

/// Where the acknowledgements of a source's events go.
#[derive(Debug)]
enum AckTarget {
    /// A file the engine reads: its ack cell (checkpoint prefix and in-flight budget).
    Engine(Arc<AckCell>),
    /// A source another reader owns (the sidecar's Kubernetes log streams).
    External(Arc<dyn ExternalAck>),
    /// Nobody: acks are ignored (consumer tests).
    #[cfg(any(test, feature = "test-util"))]
    Detached,
}

/// The owner of a source the engine does not read, told of every acknowledgement of its
/// events. Its events carry offsets in a space of its own choosing (say, bytes of one stream),
/// and `ack` is called with each delivered event's `offset..end_offset`, in any order, maybe
/// more than once, from any thread (so it must be quick and must not block).
pub trait ExternalAck: Send + Sync + std::fmt::Debug {
    /// The event `[offset, end_offset)` was delivered.
    fn ack(&self, offset: u64, end_offset: u64);
}

impl SourceFile {
    pub(crate) fn tracked(id: FileId, path: PathBuf, container: String, ack: Arc<AckCell>) -> Self {
        Self {
            id,
            path,
            container,
            ack: AckTarget::Engine(ack),
        }
    }

    /// A source read by someone other than the engine (not a file: `path` names it, e.g.
    /// `k8s://app`); acknowledgements of its events go to `ack`, and the engine's budget and
    /// checkpoints never see them.
    pub fn external(
        path: impl Into<PathBuf>,
        container: impl Into<String>,
        ack: Arc<dyn ExternalAck>,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: FileId { dev: 0, ino: 0 },
            path: path.into(),
            container: container.into(),
            ack: AckTarget::External(ack),
        })
    }

    /// A source not backed by the engine, for building events in tests of a consumer; acks on
    /// its events are ignored.
    #[cfg(any(test, feature = "test-util"))]
    pub fn detached(path: impl Into<PathBuf>, container: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            id: FileId { dev: 0, ino: 0 },
            path: path.into(),
            container: container.into(),
            ack: AckTarget::Detached,
        })
    }

    pub(crate) fn ack_cell(&self) -> Option<&AckCell> {
        match &self.ack {
            AckTarget::Engine(cell) => Some(cell),
            _ => None,
        }
    }

    pub(crate) fn external_ack(&self) -> Option<&dyn ExternalAck> {
        match &self.ack {
            AckTarget::External(owner) => Some(owner.as_ref()),
            _ => None,
        }
    }
}

/// One line, one piece of an over-long line, or one joined multiline event.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub source: Arc<SourceFile>,
    /// Raw bytes without the trailing `\n` / `\r\n`; may be invalid UTF-8.
    pub bytes: Vec<u8>,
    /// Offset of the first byte in the file.
    pub offset: u64,
    /// Offset just past the consumed bytes (newline included). Ack with `offset..end_offset`.
    pub end_offset: u64,
    /// When the engine read the bytes.
    pub read_time: SystemTime,
    /// `Some` when a long line was split.
    pub part: Option<Part>,
}

impl LogEvent {
    /// File bytes this event accounts for in the in-flight budget.
    pub fn consumed_bytes(&self) -> u64 {
        self.end_offset - self.offset
    }
}

/// Ordered events from the engine (batched internally to keep the channel cheap).
#[derive(Debug)]
pub struct EventStream {
    pub(crate) rx: mpsc::Receiver<Vec<LogEvent>>,
    pub(crate) buffered: std::vec::IntoIter<LogEvent>,
}

impl EventStream {
    /// The next event; `None` once the engine has drained (or stopped) and everything was
    /// delivered.
    pub async fn recv(&mut self) -> Option<LogEvent> {
        loop {
            if let Some(event) = self.buffered.next() {
                return Some(event);
            }
            self.buffered = self.rx.recv().await?.into_iter();
        }
    }

    /// The next batch of events (whatever the engine produced in one read), for consumers that
    /// batch anyway. Never returns an empty batch.
    pub async fn recv_batch(&mut self) -> Option<Vec<LogEvent>> {
        let rest: Vec<LogEvent> = std::mem::take(&mut self.buffered).collect();
        if !rest.is_empty() {
            return Some(rest);
        }
        loop {
            let batch = self.rx.recv().await?;
            if !batch.is_empty() {
                return Some(batch);
            }
        }
    }
}

/// Whether `bytes` is valid UTF-8. The engine passes raw bytes; the shipper emits `log` (lossy,
/// invalid sequences as U+FFFD) plus `log_base64` (the exact bytes) when this is false.
pub fn is_valid_utf8(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok()
}
