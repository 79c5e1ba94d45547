//! Every metric the sidecar exports: name (without the `firetail_` prefix; counters get
//! `_total` on exposition) and help text, in one place. Dashboards, alerts and the benchmark
//! scripts read these names; a rename here is a breaking change for them.

/// The prefix of every metric.
pub const PREFIX: &str = "firetail";

/// One metric's name and help text.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// Name without the prefix.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
}

/// Events received from the tailing engine.
pub const EVENTS_READ: Def = Def {
    name: "events_read",
    help: "Events received from the tailing engine",
};
/// Line bytes received from the tailing engine.
pub const READ_BYTES: Def = Def {
    name: "read_bytes",
    help: "Line bytes received from the tailing engine",
};
/// Events in records Firehose accepted.
pub const EVENTS_SENT: Def = Def {
    name: "events_sent",
    help: "Events in records Firehose accepted",
};
/// Records Firehose accepted.
pub const RECORDS_SENT: Def = Def {
    name: "records_sent",
    help: "Records Firehose accepted",
};
/// Record bytes Firehose accepted (compressed where the format compresses).
pub const RECORD_BYTES_SENT: Def = Def {
    name: "record_bytes_sent",
    help: "Record bytes Firehose accepted",
};
/// Accepted records rounded up to 5 KiB each, as Firehose bills ingestion.
pub const ESTIMATED_BILLED_BYTES: Def = Def {
    name: "estimated_billed_bytes",
    help: "Accepted records rounded up to 5 KiB each, as Firehose bills ingestion",
};
/// `PutRecordBatch` calls, retries included.
pub const REQUESTS: Def = Def {
    name: "requests",
    help: "PutRecordBatch calls, retries included",
};
/// Events per accepted record (histogram).
pub const EVENTS_PER_RECORD: Def = Def {
    name: "events_per_record",
    help: "Events per accepted record",
};
/// Records resent, by error code.
pub const RETRIES: Def = Def {
    name: "retries",
    help: "Records resent, by error code",
};
/// Failed calls or entries, by error code.
pub const FAILURES: Def = Def {
    name: "failures",
    help: "Failed calls or entries, by error code",
};
/// Lines split into parts to fit a record.
pub const EVENTS_SPLIT: Def = Def {
    name: "events_split",
    help: "Lines split into parts to fit a record",
};
/// Lines truncated to fit a record (`--oversize truncate`).
pub const EVENTS_TRUNCATED: Def = Def {
    name: "events_truncated",
    help: "Lines truncated to fit a record",
};
/// Bytes read and not yet acknowledged (gauge).
pub const IN_FLIGHT_BYTES: Def = Def {
    name: "in_flight_bytes",
    help: "Bytes packed or sent, not yet acknowledged",
};
/// Unterminated lines and multiline groups the engine holds (gauge); with
/// [`IN_FLIGHT_BYTES`] what [`MEMORY_BUDGET_BYTES`] bounds (sidecar/README.md "Memory model").
pub const BUFFERED_BYTES: Def = Def {
    name: "buffered_bytes",
    help: "Bytes of unfinished lines and multiline groups held by the tailing engine",
};
/// The memory budget (`--max-inflight-bytes`): in-flight plus buffered bytes never pass it.
pub const MEMORY_BUDGET_BYTES: Def = Def {
    name: "memory_budget_bytes",
    help: "The budget that in_flight_bytes plus buffered_bytes never pass (--max-inflight-bytes)",
};
/// Bytes read but not yet covered by a checkpoint (gauge).
pub const CHECKPOINT_LAG_BYTES: Def = Def {
    name: "checkpoint_lag_bytes",
    help: "Bytes read but not yet covered by a checkpoint",
};
/// Tailing faults by kind.
pub const TAIL_ERRORS: Def = Def {
    name: "tail_errors",
    help: "Tailing faults by kind: open, read, checkpoint_write, checkpoint_load, discovery, watch, symlink_outside_roots (a link out of the tailed directories, not followed)",
};
/// Truncated files detected (copytruncate rotation).
pub const TRUNCATIONS: Def = Def {
    name: "truncations",
    help: "Truncated files detected (copytruncate rotation)",
};
/// Files open for tailing (gauge).
pub const FILES_OPEN: Def = Def {
    name: "files_open",
    help: "Files open for tailing",
};

/// Bytes in tailed files not read yet (gauge).
pub const UNREAD_BYTES: Def = Def {
    name: "unread_bytes",
    help: "Bytes in tailed files beyond the read position, as of the last scan",
};
/// What the drain has left to do, then what it left (gauges, sidecar/README.md "Shutdown and
/// drain").
pub const DRAIN_UNREAD_BYTES: Def = Def {
    name: "drain_unread_bytes",
    help: "0 until SIGTERM; while draining, bytes not read yet; after the drain, bytes it left unread",
};
/// See [`DRAIN_UNREAD_BYTES`].
pub const DRAIN_UNACKED_BYTES: Def = Def {
    name: "drain_unacked_bytes",
    help: "0 until SIGTERM; while draining, bytes not acknowledged yet; after the drain, bytes it left unacknowledged",
};
/// Drains by outcome.
pub const DRAINS: Def = Def {
    name: "drains",
    help: "Drains by outcome: complete, deadline (data left unread or unacknowledged), failed",
};
/// Metrics-server connections over the cap.
pub const HTTP_CONNECTIONS_REFUSED: Def = Def {
    name: "http_connections_refused",
    help: "Metrics-server connections closed on arrival because the connection cap was reached",
};
/// Metrics-server connections that took too long.
pub const HTTP_CONNECTIONS_TIMED_OUT: Def = Def {
    name: "http_connections_timed_out",
    help: "Metrics-server connections closed because the request or response took too long",
};
/// Metrics-server accept errors.
pub const HTTP_ACCEPT_ERRORS: Def = Def {
    name: "http_accept_errors",
    help: "Metrics-server accept errors (such as running out of descriptors), each followed by a backoff",
};

/// Errors of the stdout source's Kubernetes API requests, by reason.
pub const STDOUT_ERRORS: Def = Def {
    name: "stdout_errors",
    help: "Errors following container logs through the Kubernetes API, by reason: forbidden (RBAC denies pods/log), throttled (429), server_error (5xx), waiting (container not started yet), bad_request (other 400), previous_gone (the previous instance's log is no longer available: its unread lines are lost), not_found, client_error (other 4xx), connect (no answer), disconnect (stream cut mid-way, or no answer to the request within the idle time), idle_reconnect (a stream silent for --stdout-idle-reconnect-ms reopened from its last line), pod (pod status lookup failed), checkpoint_load, checkpoint_write",
};
/// Lines a resumed log stream repeated and the stdout source skipped.
pub const STDOUT_LINES_SKIPPED: Def = Def {
    name: "stdout_lines_skipped",
    help: "Lines of resumed container log streams skipped because they were already read (sinceTime has second precision)",
};
/// Container log streams open (gauge).
pub const STDOUT_STREAMS_OPEN: Def = Def {
    name: "stdout_streams_open",
    help: "Container log streams the stdout source has open through the Kubernetes API",
};

/// Every metric, in exposition order.
pub const ALL: [Def; 27] = [
    EVENTS_READ,
    READ_BYTES,
    EVENTS_SENT,
    RECORDS_SENT,
    RECORD_BYTES_SENT,
    ESTIMATED_BILLED_BYTES,
    REQUESTS,
    EVENTS_PER_RECORD,
    RETRIES,
    FAILURES,
    EVENTS_SPLIT,
    EVENTS_TRUNCATED,
    IN_FLIGHT_BYTES,
    CHECKPOINT_LAG_BYTES,
    TAIL_ERRORS,
    TRUNCATIONS,
    FILES_OPEN,
    UNREAD_BYTES,
    DRAIN_UNREAD_BYTES,
    DRAIN_UNACKED_BYTES,
    DRAINS,
    HTTP_CONNECTIONS_REFUSED,
    HTTP_CONNECTIONS_TIMED_OUT,
    HTTP_ACCEPT_ERRORS,
    STDOUT_ERRORS,
    STDOUT_LINES_SKIPPED,
    STDOUT_STREAMS_OPEN,
];
