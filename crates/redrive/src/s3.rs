//! The one boundary to S3: [`ObjectStore`], the six operations a redrive uses, its
//! aws-sdk-s3 implementation [`SdkStore`], and (feature `test-util`) an in-memory bucket,
//! [`memory::MemoryStore`].
//!
//! Every read and copy can be pinned to the ETag the object was listed with, so an object
//! replaced in the meantime is never mistaken for the one whose progress was recorded.

use std::future::Future;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{Tag, Tagging};

/// An object as listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Key.
    pub key: String,
    /// ETag, quoted as S3 returns it; empty when the store gave none.
    pub etag: String,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Objects on this page, in the store's order.
    pub objects: Vec<Listed>,
    /// Token for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// A failed S3 operation, as text for the summary (the redrive reports it per object and
/// goes on, or stops when it was the listing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The S3 operations a redrive uses. `bucket` is given per call, like the stream of
/// [`firetail_firehose::FirehoseClient`].
pub trait ObjectStore: Send + Sync {
    /// One page of `ListObjectsV2` under `prefix`, continuing from `token`.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<String>,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// The object's bytes; with `if_match`, only if its ETag still is that one.
    fn get(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// The object's tags, `(key, value)`.
    fn get_tags(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Replaces the object's tags.
    fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Copies `from` to `to` in the same bucket; with `if_match`, only if `from`'s ETag still
    /// is that one.
    fn copy(
        &self,
        bucket: &str,
        from: &str,
        to: &str,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the object.
    fn delete(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// How the SDK client addresses buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// `endpoint/bucket` instead of `bucket.endpoint` (S3-compatible servers, local
    /// endpoints).
    pub force_path_style: bool,
}

/// [`ObjectStore`] over aws-sdk-s3.
#[derive(Debug, Clone)]
pub struct SdkStore {
    client: aws_sdk_s3::Client,
}

impl SdkStore {
    /// A client from the SDK's default chain (environment, profile, SSO, IRSA; endpoint from
    /// `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`).
    pub async fn from_env(settings: S3Settings) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(settings.force_path_style)
            .build();
        Self::new(aws_sdk_s3::Client::from_conf(conf))
    }

    /// Wraps a client built elsewhere (tests against a local endpoint).
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

fn sdk_error(what: &str, e: &dyn std::error::Error) -> StoreError {
    StoreError(format!("{what}: {}", DisplayErrorContext(e)))
}

impl ObjectStore for SdkStore {
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<String>,
    ) -> Result<Page, StoreError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("listing", &e))?;
        let objects = page
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_owned(),
                    etag: o.e_tag().unwrap_or_default().to_owned(),
                })
            })
            .collect();
        Ok(Page {
            objects,
            next: page.next_continuation_token().map(str::to_owned),
        })
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error("reading", &e))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError(format!("reading the body: {e}")))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn get_tags(&self, bucket: &str, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("reading tags", &e))?;
        Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    async fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError> {
        let tag_set = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError(format!("building the tag: {e}")))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|e| StoreError(format!("building the tag set: {e}")))?;
        self.client
            .put_object_tagging()
            .bucket(bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| sdk_error("tagging", &e))?;
        Ok(())
    }

    async fn copy(
        &self,
        bucket: &str,
        from: &str,
        to: &str,
        if_match: Option<&str>,
    ) -> Result<(), StoreError> {
        self.client
            .copy_object()
            .bucket(bucket)
            .key(to)
            .copy_source(format!("{bucket}/{}", encode_key(from)))
            .set_copy_source_if_match(if_match.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error("copying", &e))?;
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("deleting", &e))?;
        Ok(())
    }
}

/// Percent-encodes a key for `x-amz-copy-source` (everything but unreserved characters and `/`).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(any(test, feature = "test-util"))]
pub mod memory {
    //! An in-memory bucket store for tests: ETags change with the content, listings come in
    //! pages of [`MemoryStore::with_page_size`], and any operation can be made to fail.

    use std::collections::{BTreeMap, BTreeSet};
    use std::hash::{Hash as _, Hasher as _};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use super::{Listed, ObjectStore, Page, StoreError};

    /// An [`ObjectStore`] operation, to make it fail ([`MemoryStore::fail`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Op {
        /// `list`.
        List,
        /// `get`.
        Get,
        /// `get_tags`.
        GetTags,
        /// `put_tags`.
        PutTags,
        /// `copy`.
        Copy,
        /// `delete`.
        Delete,
    }

    /// One stored object.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Object {
        /// Content.
        pub body: Vec<u8>,
        /// ETag (quoted, derived from the content).
        pub etag: String,
        /// Tags.
        pub tags: Vec<(String, String)>,
    }

    #[derive(Debug, Default)]
    struct Inner {
        objects: BTreeMap<(String, String), Object>,
        failing: BTreeSet<Op>,
    }

    /// Buckets in memory.
    #[derive(Debug)]
    pub struct MemoryStore {
        inner: Mutex<Inner>,
        page_size: usize,
    }

    impl Default for MemoryStore {
        fn default() -> Self {
            Self::with_page_size(1_000)
        }
    }

    impl MemoryStore {
        /// An empty store listing at most 1,000 keys per page, like S3.
        pub fn new() -> Self {
            Self::default()
        }

        /// An empty store listing at most `page_size` keys per page.
        pub fn with_page_size(page_size: usize) -> Self {
            Self {
                inner: Mutex::new(Inner::default()),
                page_size: page_size.max(1),
            }
        }

        fn lock(&self) -> MutexGuard<'_, Inner> {
            self.inner.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Puts an object (replacing one, and its tags, like S3).
        pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
            let body = body.into();
            let object = Object {
                etag: etag(&body),
                body,
                tags: Vec::new(),
            };
            self.lock()
                .objects
                .insert((bucket.to_owned(), key.to_owned()), object);
        }

        /// The object at `key`, if any.
        pub fn object(&self, bucket: &str, key: &str) -> Option<Object> {
            self.lock()
                .objects
                .get(&(bucket.to_owned(), key.to_owned()))
                .cloned()
        }

        /// Keys in `bucket`, sorted.
        pub fn keys(&self, bucket: &str) -> Vec<String> {
            self.lock()
                .objects
                .keys()
                .filter(|(b, _)| b == bucket)
                .map(|(_, k)| k.clone())
                .collect()
        }

        /// Makes every later call of `op` fail.
        pub fn fail(&self, op: Op) {
            self.lock().failing.insert(op);
        }

        fn check(&self, op: Op) -> Result<MutexGuard<'_, Inner>, StoreError> {
            let inner = self.lock();
            if inner.failing.contains(&op) {
                return Err(StoreError(format!("{op:?}: injected failure")));
            }
            Ok(inner)
        }
    }

    fn etag(body: &[u8]) -> String {
        let mut h = std::hash::DefaultHasher::new();
        body.hash(&mut h);
        format!("\"{:016x}\"", h.finish())
    }

    fn missing(key: &str) -> StoreError {
        StoreError(format!("NoSuchKey: {key}"))
    }

    fn id(bucket: &str, key: &str) -> (String, String) {
        (bucket.to_owned(), key.to_owned())
    }

    fn matches(object: &Object, if_match: Option<&str>) -> Result<(), StoreError> {
        match if_match {
            Some(etag) if etag != object.etag => Err(StoreError("PreconditionFailed".into())),
            _ => Ok(()),
        }
    }

    impl ObjectStore for MemoryStore {
        async fn list(
            &self,
            bucket: &str,
            prefix: &str,
            token: Option<String>,
        ) -> Result<Page, StoreError> {
            let inner = self.check(Op::List)?;
            let after = token.unwrap_or_default();
            let mut objects: Vec<Listed> = inner
                .objects
                .iter()
                .filter(|((b, k), _)| b == bucket && k.starts_with(prefix) && *k > after)
                .map(|((_, k), o)| Listed {
                    key: k.clone(),
                    etag: o.etag.clone(),
                })
                .take(self.page_size + 1)
                .collect();
            let next = (objects.len() > self.page_size).then(|| {
                objects.truncate(self.page_size);
                objects.last().map(|o| o.key.clone()).unwrap_or_default()
            });
            Ok(Page { objects, next })
        }

        async fn get(
            &self,
            bucket: &str,
            key: &str,
            if_match: Option<&str>,
        ) -> Result<Vec<u8>, StoreError> {
            let inner = self.check(Op::Get)?;
            let object = inner
                .objects
                .get(&id(bucket, key))
                .ok_or_else(|| missing(key))?;
            matches(object, if_match)?;
            Ok(object.body.clone())
        }

        async fn get_tags(
            &self,
            bucket: &str,
            key: &str,
        ) -> Result<Vec<(String, String)>, StoreError> {
            let inner = self.check(Op::GetTags)?;
            let object = inner
                .objects
                .get(&id(bucket, key))
                .ok_or_else(|| missing(key))?;
            Ok(object.tags.clone())
        }

        async fn put_tags(
            &self,
            bucket: &str,
            key: &str,
            tags: &[(String, String)],
        ) -> Result<(), StoreError> {
            let mut inner = self.check(Op::PutTags)?;
            let object = inner
                .objects
                .get_mut(&id(bucket, key))
                .ok_or_else(|| missing(key))?;
            object.tags = tags.to_vec();
            Ok(())
        }

        async fn copy(
            &self,
            bucket: &str,
            from: &str,
            to: &str,
            if_match: Option<&str>,
        ) -> Result<(), StoreError> {
            let mut inner = self.check(Op::Copy)?;
            let object = inner
                .objects
                .get(&id(bucket, from))
                .ok_or_else(|| missing(from))?;
            matches(object, if_match)?;
            let copy = Object {
                tags: Vec::new(),
                ..object.clone()
            };
            inner.objects.insert(id(bucket, to), copy);
            Ok(())
        }

        async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
            // Like S3, deleting a missing key succeeds.
            self.check(Op::Delete)?.objects.remove(&id(bucket, key));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::memory::{MemoryStore, Op};
    use super::*;

    #[test]
    fn copy_source_keys_are_percent_encoded() {
        assert_eq!(encode_key("a/b-1_2.~"), "a/b-1_2.~");
        assert_eq!(encode_key("a b+c=é"), "a%20b%2Bc%3D%C3%A9");
    }

    #[tokio::test]
    async fn the_memory_store_pages_pins_etags_and_fails_on_request() {
        let store = MemoryStore::with_page_size(2);
        for k in ["p/a", "p/b", "p/c", "q/d"] {
            store.put("b", k, k.as_bytes());
        }
        let first = store.list("b", "p/", None).await.unwrap();
        assert_eq!(first.objects.len(), 2);
        let second = store.list("b", "p/", first.next.clone()).await.unwrap();
        assert_eq!(second.objects.len(), 1);
        assert_eq!(second.next, None);
        let etag = first.objects[0].etag.clone();
        assert_eq!(store.get("b", "p/a", Some(&etag)).await.unwrap(), b"p/a");
        store.put("b", "p/a", "changed");
        assert!(store.get("b", "p/a", Some(&etag)).await.is_err());
        store.fail(Op::Delete);
        assert!(store.delete("b", "p/a").await.is_err());
    }
}
