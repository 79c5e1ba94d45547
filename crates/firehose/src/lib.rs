//! firetail-firehose: the one boundary between firetail and Amazon Data Firehose. The sidecar
//! ships through it, the transform re-ingests through it, redrive puts back through it; no
//! other crate of the product imports aws-sdk-firehose.
//!
//! # Layout
//! - [`client`]: [`FirehoseClient`] (`PutRecordBatch`, `DescribeDeliveryStream`), the
//!   per-entry [`EntryOutcome`], the classified [`CallError`], [`StreamStatus`], [`classify`].
//! - [`batch`]: [`Record`] (bytes plus one acknowledgement token per event), [`Batch`],
//!   [`Batcher`] and [`batch_records`] within [`CallLimits`].
//! - [`deliver()`]: the delivery loop — resend only failed entries, [`Backoff`] with jitter,
//!   [`RetryPolicy`] forever or bounded by attempts and a deadline.
//! - [`observe`]: [`DeliveryObserver`], how a caller counts what the loop does.
//! - `sdk` (feature `sdk`, default): [`SdkClient`], the real client.
//! - `testing` (feature `test-util`): in-process fakes for other crates' tests.
//!
//! The out-of-process fault-injecting endpoint of the test kit exercises [`SdkClient`] through
//! the real SDK; the fakes only cover bookkeeping.

pub mod batch;
pub mod client;
pub mod deliver;
pub mod observe;
#[cfg(feature = "sdk")]
pub mod sdk;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use batch::{Batch, Batcher, CallLimits, Record, batch_records};
pub use client::{CallError, EntryOutcome, FirehoseClient, StreamStatus, classify};
pub use deliver::{Backoff, Delivery, GiveUp, RetryPolicy, deliver};
pub use observe::DeliveryObserver;
#[cfg(feature = "sdk")]
pub use sdk::{ClientSettings, SdkClient};

/// The delivery stream's name from its ARN
/// (`arn:aws:firehose:us-east-1:123456789012:deliverystream/NAME`).
pub fn stream_name(arn: &str) -> Option<&str> {
    arn.rsplit_once(":deliverystream/")
        .map(|(_, name)| name)
        .filter(|n| !n.is_empty())
}

/// The AWS account id from a delivery stream's ARN (the fifth field: `arn:PARTITION:firehose:
/// REGION:ACCOUNT:deliverystream/NAME`), when it is one.
pub fn account_id(arn: &str) -> Option<&str> {
    let mut fields = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("firehose"), Some(_region), Some(account)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return None;
    };
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_from_arns() {
        assert_eq!(
            stream_name("arn:aws:firehose:us-east-1:123456789012:deliverystream/logs"),
            Some("logs")
        );
        assert_eq!(
            stream_name("arn:aws:firehose:us-east-1:123456789012:deliverystream/"),
            None
        );
        assert_eq!(stream_name("garbage"), None);
    }

    #[test]
    fn account_ids_from_arns() {
        assert_eq!(
            account_id("arn:aws:firehose:us-east-1:123456789012:deliverystream/logs"),
            Some("123456789012")
        );
        assert_eq!(
            account_id("arn:aws-cn:firehose:cn-north-1:123456789012:deliverystream/x"),
            Some("123456789012")
        );
        for not_one in [
            "arn:aws:firehose:us-east-1::deliverystream/logs",
            "arn:aws:s3:us-east-1:123456789012:deliverystream/logs",
            "arn:aws:firehose:us-east-1:12345678901x:deliverystream/logs",
            "garbage",
            "",
        ] {
            assert_eq!(account_id(not_one), None, "{not_one}");
        }
    }
}
