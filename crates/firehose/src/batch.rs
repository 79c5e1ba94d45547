//! Records and the `PutRecordBatch` calls that carry them.
//!
//! A [`Record`] carries, besides its bytes, one token per event inside it, so whoever sends it
//! can acknowledge exactly the events whose record Firehose accepted. [`Batcher`] groups
//! records into calls within [`CallLimits`], keeping their order; every sender (the sidecar's
//! packer, the transform's re-ingest, redrive) batches through it.

use std::collections::VecDeque;

use bytes::Bytes;
use firetail_wire::limits::{PUT_RECORD_BATCH_MAX_BYTES, PUT_RECORD_BATCH_MAX_RECORDS};

/// One Firehose record and the events inside it.
#[derive(Debug)]
pub struct Record<T> {
    /// What goes on the wire.
    pub data: Bytes,
    /// Bytes of the events before compression (including newlines); `data.len()` when the
    /// record is not compressed.
    pub raw_bytes: usize,
    /// Acknowledgement tokens, one per event, in order.
    pub tokens: Vec<T>,
}

impl<T> Record<T> {
    /// A record of `data` holding one event acknowledged by `token`.
    pub fn single(data: impl Into<Bytes>, token: T) -> Self {
        let data = data.into();
        Self {
            raw_bytes: data.len(),
            data,
            tokens: vec![token],
        }
    }
}

/// Records for one `PutRecordBatch` call, within its limits.
#[derive(Debug)]
pub struct Batch<T> {
    /// The records, in the order they were added.
    pub records: Vec<Record<T>>,
}

impl<T> Batch<T> {
    /// Sum of the record data sizes.
    pub fn data_bytes(&self) -> usize {
        self.records.iter().map(|r| r.data.len()).sum()
    }

    /// Number of events in the batch.
    pub fn events(&self) -> usize {
        self.records.iter().map(|r| r.tokens.len()).sum()
    }
}

/// The limits of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Most records per call.
    pub records: usize,
    /// Most record data bytes per call.
    pub bytes: usize,
}

impl CallLimits {
    /// `PutRecordBatch`'s limits.
    pub const FIREHOSE: Self = Self {
        records: PUT_RECORD_BATCH_MAX_RECORDS,
        bytes: PUT_RECORD_BATCH_MAX_BYTES,
    };
}

/// Groups records into batches as they come.
#[derive(Debug)]
pub struct Batcher<T> {
    limits: CallLimits,
    current: Vec<Record<T>>,
    bytes: usize,
    ready: VecDeque<Batch<T>>,
}

impl<T> Batcher<T> {
    /// A batcher for `limits`.
    pub fn new(limits: CallLimits) -> Self {
        Self {
            limits,
            current: Vec::new(),
            bytes: 0,
            ready: VecDeque::new(),
        }
    }

    /// Adds `record` to the open batch; a batch that is full (or that `record` would overflow)
    /// becomes ready. A record larger than the byte limit goes alone into a batch of its own.
    pub fn push(&mut self, record: Record<T>) {
        if !self.current.is_empty()
            && (self.current.len() >= self.limits.records
                || self.bytes + record.data.len() > self.limits.bytes)
        {
            self.cut();
        }
        self.bytes += record.data.len();
        self.current.push(record);
        if self.current.len() >= self.limits.records {
            self.cut();
        }
    }

    /// Makes the open batch ready, if it holds anything.
    pub fn cut(&mut self) {
        if !self.current.is_empty() {
            self.ready.push_back(Batch {
                records: std::mem::take(&mut self.current),
            });
            self.bytes = 0;
        }
    }

    /// The oldest ready batch.
    pub fn take_ready(&mut self) -> Option<Batch<T>> {
        self.ready.pop_front()
    }

    /// True when no record is held, open or ready.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty() && self.ready.is_empty()
    }

    /// Records in the open batch.
    pub fn open_records(&self) -> &[Record<T>] {
        &self.current
    }
}

/// Groups records that exist already into batches, keeping their order.
pub fn batch_records<T>(
    records: impl IntoIterator<Item = Record<T>>,
    limits: CallLimits,
) -> Vec<Batch<T>> {
    let mut batcher = Batcher::new(limits);
    for record in records {
        batcher.push(record);
    }
    batcher.cut();
    std::iter::from_fn(|| batcher.take_ready()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize, token: usize) -> Record<usize> {
        Record::single(vec![b'x'; n], token)
    }

    #[test]
    fn batch_records_keeps_order_within_call_limits() {
        let limits = CallLimits {
            records: 3,
            bytes: 20,
        };
        let records = [10, 10, 1, 1, 1, 1, 5]
            .into_iter()
            .enumerate()
            .map(|(i, n)| record(n, i));
        let shape: Vec<Vec<usize>> = batch_records(records, limits)
            .iter()
            .map(|b| b.records.iter().map(|r| r.tokens[0]).collect())
            .collect();
        // 20 bytes fill the first call; three records fill the second.
        assert_eq!(shape, vec![vec![0, 1], vec![2, 3, 4], vec![5, 6]]);
        assert!(batch_records(Vec::<Record<usize>>::new(), limits).is_empty());
    }

    #[test]
    fn firehose_limits_cut_by_count_and_bytes() {
        let sizes = |records: Vec<Record<usize>>| -> Vec<usize> {
            batch_records(records, CallLimits::FIREHOSE)
                .iter()
                .map(|b| b.records.len())
                .collect()
        };
        assert_eq!(
            sizes((0..1_001).map(|i| record(10, i)).collect()),
            vec![500, 500, 1]
        );
        assert_eq!(
            sizes((0..9).map(|i| record(1_000 * 1024, i)).collect()),
            vec![4, 4, 1]
        );
        // Larger than a whole call: alone, not dropped.
        assert_eq!(
            sizes(vec![record(1, 0), record(5 << 20, 1), record(1, 2)]),
            vec![1, 1, 1]
        );
    }

    #[test]
    fn a_full_batch_is_ready_without_a_cut() {
        let mut b = Batcher::new(CallLimits {
            records: 2,
            bytes: 100,
        });
        b.push(record(1, 0));
        assert!(b.take_ready().is_none());
        b.push(record(1, 1));
        assert_eq!(b.take_ready().map(|b| b.records.len()), Some(2));
        assert!(b.is_empty());
    }
}
