//! In-process fakes of [`FirehoseClient`] for tests of the crates that deliver (feature
//! `test-util`). They cover the bookkeeping; the real SDK path is tested against moto and the
//! test kit's fault-injecting endpoint.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

use crate::client::{CallError, EntryOutcome, FirehoseClient, StreamStatus};

/// What one call of a [`Scripted`] client answers.
#[derive(Debug, Clone)]
pub enum Step {
    /// Accept the entries marked `true`, fail the others with `ServiceUnavailableException`.
    Mask(Vec<bool>),
    /// Fail the whole call.
    Fail(CallError),
    /// Never answer (a hanging endpoint).
    Hang,
}

/// One call as a fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The delivery stream.
    pub stream: String,
    /// The records, in order.
    pub records: Vec<Bytes>,
}

/// Answers calls from a script, then accepts everything; records every call.
#[derive(Debug, Default)]
pub struct Scripted {
    script: Mutex<VecDeque<Step>>,
    calls: Mutex<Vec<Call>>,
    accepted: Mutex<Vec<Bytes>>,
    status: Mutex<Option<StreamStatus>>,
}

impl Scripted {
    /// A client answering `steps` in order, then accepting every record.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            script: Mutex::new(steps.into_iter().collect()),
            ..Self::default()
        }
    }

    /// A client that accepts every record.
    pub fn accepting() -> Self {
        Self::default()
    }

    /// Adds steps after those not yet played.
    pub fn then(&self, steps: impl IntoIterator<Item = Step>) {
        self.script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(steps);
    }

    /// What `describe_delivery_stream` answers (default `ACTIVE`).
    pub fn set_status(&self, status: StreamStatus) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
    }

    /// Every `PutRecordBatch` call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every record of every call that was answered as accepted, in order.
    pub fn accepted(&self) -> Vec<Bytes> {
        self.accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl FirehoseClient for Scripted {
    async fn put_record_batch(
        &self,
        stream: &str,
        records: &[Bytes],
    ) -> Result<Vec<EntryOutcome>, CallError> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Call {
                stream: stream.to_owned(),
                records: records.to_vec(),
            });
        let step = self
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        let mask = match step {
            None => vec![true; records.len()],
            Some(Step::Mask(mask)) => mask,
            Some(Step::Fail(err)) => return Err(err),
            Some(Step::Hang) => std::future::pending().await,
        };
        let mut outcomes = Vec::with_capacity(records.len());
        let mut accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, record) in records.iter().enumerate() {
            if mask.get(i).copied().unwrap_or(true) {
                accepted.push(record.clone());
                outcomes.push(EntryOutcome::Accepted);
            } else {
                outcomes.push(EntryOutcome::Failed {
                    code: "ServiceUnavailableException".into(),
                    message: "Slow down.".into(),
                });
            }
        }
        Ok(outcomes)
    }

    async fn describe_delivery_stream(&self, _stream: &str) -> Result<StreamStatus, CallError> {
        Ok(self
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or(StreamStatus::Active))
    }
}

/// Fails every call with the same error (a stream that is gone, credentials that never work).
#[derive(Debug, Clone)]
pub struct Failing(pub CallError);

impl FirehoseClient for Failing {
    async fn put_record_batch(
        &self,
        _stream: &str,
        _records: &[Bytes],
    ) -> Result<Vec<EntryOutcome>, CallError> {
        Err(self.0.clone())
    }

    async fn describe_delivery_stream(&self, _stream: &str) -> Result<StreamStatus, CallError> {
        Err(self.0.clone())
    }
}
