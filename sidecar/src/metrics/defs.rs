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

/// Every metric, in exposition order.
pub const ALL: [Def; 17] = [
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
];
