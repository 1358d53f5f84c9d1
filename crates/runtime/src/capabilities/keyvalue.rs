//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` on a [`trellis_keyvalue::KeyValue`]
//! backend. The `watcher` export is called from [`crate::WatcherComponent`] with buckets made
//! here ([`BucketHandle::fixed`]).

use super::Linked;
use super::bindings::wasi::keyvalue::{atomics, batch, store};
use std::sync::Arc;
use tracing::Instrument as _;
use trellis_keyvalue::{Bucket, Error, KeyValue, Limits};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// What the key-value bindings see of an instance: its link, the host's bounds, and the
/// resource table its buckets live in.
pub(crate) struct KeyValueView<'a> {
    /// The component's key-value link, if it has one.
    pub(crate) linked: Option<&'a Linked<dyn KeyValue>>,
    /// The link name the instance chose for this capability (`default` unless it chose).
    pub(crate) link_name: &'a str,
    /// The host's key-value bounds.
    pub(crate) limits: &'a Limits,
    /// The instance's resource table.
    pub(crate) table: &'a mut ResourceTable,
    /// Where its operations are reported.
    pub(crate) observing: super::Observing<'a>,
}

/// Adds `wasi:keyvalue/{store,atomics,batch}` to `linker`; `view` picks out what these
/// bindings need from the store's data, so they never name the store's type.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasKeyValue>(linker, view)?;
    atomics::add_to_linker::<T, HasKeyValue>(linker, view)?;
    batch::add_to_linker::<T, HasKeyValue>(linker, view)?;
    Ok(())
}

/// Tells the generated `add_to_linker` functions that the host traits are implemented by a
/// [`KeyValueView`] borrowed from the store.
struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueView<'a>;
}

pub(crate) mod watcher_bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/keyvalue",
        inline: "
            package trellis:keyvalue-watcher;
            world watcher {
                import wasi:keyvalue/store@0.2.0-draft;
                export wasi:keyvalue/watcher@0.2.0-draft;
            }
        ",
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:keyvalue/store": crate::capabilities::bindings::wasi::keyvalue::store,
        },
    });
}

/// The host side of a guest's `bucket` resource: an identifier, opened through whichever
/// key-value link the instance's calls go through when a call is made.
///
/// As in wasmCloud, `open` binds no link: every call goes through the link the instance has
/// chosen at that moment (`wasmcloud:bus/lattice.set-link-name`, `default` unless changed).
/// wasmCloud's keyvalue-messaging example opens its buckets before it chooses a link, and
/// has no link named `default` at all.
///
/// A bucket handed to a watcher (`on-set`, `on-delete`) is the one that changed, whatever
/// link the instance chooses: it is fixed to its backend.
pub struct BucketHandle {
    identifier: String,
    /// The bucket as opened through the link named `.0`, reused while that stays the choice;
    /// `None` as the name for a bucket fixed to its backend.
    opened: Option<(Option<String>, Arc<dyn Bucket>)>,
}

impl BucketHandle {
    /// A bucket that stays `bucket`, whichever link the instance chooses.
    pub(crate) fn fixed(identifier: String, bucket: Arc<dyn Bucket>) -> Self {
        Self {
            identifier,
            opened: Some((None, bucket)),
        }
    }
}

fn to_wit(e: Error) -> store::Error {
    match e {
        Error::NoSuchStore => store::Error::NoSuchStore,
        Error::AccessDenied => store::Error::AccessDenied,
        Error::Other(m) => store::Error::Other(m),
    }
}

fn check_key(limits: &Limits, key: &str) -> Result<(), store::Error> {
    if key.len() > limits.max_key_bytes {
        return Err(store::Error::Other(format!(
            "key is {} bytes, over the limit of {} bytes (host flag --max-kv-key)",
            key.len(),
            limits.max_key_bytes
        )));
    }
    Ok(())
}

fn check_value(limits: &Limits, key: &str, value: &[u8]) -> Result<(), store::Error> {
    if value.len() > limits.max_value_bytes {
        return Err(store::Error::Other(format!(
            "value for `{key}` is {} bytes, over the limit of {} bytes (host flag --max-kv-value)",
            value.len(),
            limits.max_value_bytes
        )));
    }
    Ok(())
}

fn check_batch(limits: &Limits, n: usize) -> Result<(), store::Error> {
    if n > limits.max_batch_keys {
        return Err(store::Error::Other(format!(
            "batch of {n} keys is over the limit of {} (host flag --max-kv-batch)",
            limits.max_batch_keys
        )));
    }
    Ok(())
}

impl KeyValueView<'_> {
    /// The bucket `handle` names, through the link chosen now.
    async fn bucket(
        &mut self,
        handle: &Resource<BucketHandle>,
    ) -> wasmtime::Result<Result<Arc<dyn Bucket>, store::Error>> {
        let entry = self.table.get(handle)?;
        if let Some((name, bucket)) = &entry.opened
            && name.as_deref().is_none_or(|name| name == self.link_name)
        {
            return Ok(Ok(bucket.clone()));
        }
        let identifier = entry.identifier.clone();
        let opened = match self.backend() {
            Ok(backend) => backend.open(&identifier).await.map_err(to_wit),
            Err(e) => Err(e),
        };
        match opened {
            Ok(bucket) => {
                self.table.get_mut(handle)?.opened =
                    Some((Some(self.link_name.to_owned()), bucket.clone()));
                Ok(Ok(bucket))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// The backend of the key-value link chosen now.
    fn backend(&self) -> Result<Arc<dyn KeyValue>, store::Error> {
        let Some(linked) = self.linked else {
            return Err(store::Error::Other(super::no_link(
                "key-value",
                self.link_name,
            )));
        };
        linked.ready().cloned().map_err(store::Error::Other)
    }

    fn kv_limits(&self) -> &Limits {
        self.limits
    }

    /// A span for one `operation` (a span of the request's trace when traces are exported).
    fn span(&self, operation: &'static str) -> tracing::Span {
        self.observing.span(self.linked, "keyvalue", operation)
    }

    /// Tells the observer how `operation` went, through the link chosen now.
    fn observed<T>(
        &self,
        operation: &'static str,
        result: Result<T, store::Error>,
    ) -> Result<T, store::Error> {
        self.observing
            .observe(self.linked, "keyvalue", operation, &result);
        result
    }
}

type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

impl store::Host for KeyValueView<'_> {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<BucketHandle>> {
        // With a link chosen, open now, so a bad identifier fails here; without one (a name
        // the guest will choose later), the first call through the bucket opens it.
        let opened = match self.linked {
            Some(_) => {
                let backend = match self.backend() {
                    Ok(backend) => backend,
                    Err(e) => return Ok(Err(e)),
                };
                match backend.open(&identifier).await {
                    Ok(bucket) => Some((Some(self.link_name.to_owned()), bucket)),
                    Err(e) => return Ok(Err(to_wit(e))),
                }
            }
            None => None,
        };
        Ok(Ok(self.table.push(BucketHandle { identifier, opened })?))
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(&mut self, this: Resource<BucketHandle>, key: String) -> Outcome<Option<Vec<u8>>> {
        if let Err(e) = check_key(self.kv_limits(), &key) {
            return Ok(Err(e));
        }
        let bucket = match self.bucket(&this).await? {
            Ok(bucket) => bucket,
            Err(e) => return Ok(self.observed("get", Err(e))),
        };
        let result = bucket
            .get(&key)
            .instrument(self.span("get"))
            .await
            .map_err(to_wit);
        Ok(self.observed("get", result))
    }

    async fn set(
        &mut self,
        this: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Outcome<()> {
        if let Err(e) = check_key(self.kv_limits(), &key)
            .and_then(|()| check_value(self.kv_limits(), &key, &value))
        {
            return Ok(Err(e));
        }
        let bucket = match self.bucket(&this).await? {
            Ok(bucket) => bucket,
            Err(e) => return Ok(self.observed("set", Err(e))),
        };
        let result = bucket
            .set(&key, value)
            .instrument(self.span("set"))
            .await
            .map_err(to_wit);
        Ok(self.observed("set", result))
    }

    async fn delete(&mut self, this: Resource<BucketHandle>, key: String) -> Outcome<()> {
        if let Err(e) = check_key(self.kv_limits(), &key) {
            return Ok(Err(e));
        }
        let bucket = match self.bucket(&this).await? {
            Ok(bucket) => bucket,
            Err(e) => return Ok(self.observed("delete", Err(e))),
        };
        let result = bucket
            .delete(&key)
            .instrument(self.span("delete"))
            .await
            .map_err(to_wit);
        Ok(self.observed("delete", result))
    }

    async fn exists(&mut self, this: Resource<BucketHandle>, key: String) -> Outcome<bool> {
        if let Err(e) = check_key(self.kv_limits(), &key) {
            return Ok(Err(e));
        }
        let bucket = match self.bucket(&this).await? {
            Ok(bucket) => bucket,
            Err(e) => return Ok(self.observed("exists", Err(e))),
        };
        let result = bucket
            .exists(&key)
            .instrument(self.span("exists"))
            .await
            .map_err(to_wit);
        Ok(self.observed("exists", result))
    }

    async fn list_keys(
        &mut self,
        this: Resource<BucketHandle>,
        cursor: Option<u64>,
    ) -> Outcome<store::KeyResponse> {
        let bucket = match self.bucket(&this).await? {
            Ok(bucket) => bucket,
            Err(e) => return Ok(self.observed("list-keys", Err(e))),
        };
        let limit = self.kv_limits().list_page_size;
        let result = bucket
            .list_keys(cursor, limit)
            .instrument(self.span("list-keys"))
            .await
            .map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(to_wit);
        Ok(self.observed("list-keys", result))
    }

    async fn drop(&mut self, this: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        delta: u64,
    ) -> Outcome<u64> {
        if let Err(e) = check_key(self.kv_limits(), &key) {
            return Ok(Err(e));
        }
        let bucket = match self.bucket(&bucket).await? {
            Ok(bucket) => bucket,
            Err(e) => return Ok(self.observed("increment", Err(e))),
        };
        let result = bucket
            .increment(&key, delta)
            .instrument(self.span("increment"))
            .await
            .map_err(to_wit);
        Ok(self.observed("increment", result))
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let limits = self.kv_limits();
        if let Err(e) = check_batch(limits, keys.len())
            .and_then(|()| keys.iter().try_for_each(|k| check_key(limits, k)))
        {
            return Ok(Err(e));
        }
        let bucket = match self.bucket(&bucket).await? {
            Ok(bucket) => bucket,
            Err(e) => return Ok(self.observed("get-many", Err(e))),
        };
        let result = bucket
            .get_many(keys)
            .instrument(self.span("get-many"))
            .await
            .map_err(to_wit);
        Ok(self.observed("get-many", result))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let limits = self.kv_limits();
        let checked = check_batch(limits, key_values.len()).and_then(|()| {
            key_values.iter().try_for_each(|(k, v)| {
                check_key(limits, k).and_then(|()| check_value(limits, k, v))
            })
        });
        if let Err(e) = checked {
            return Ok(Err(e));
        }
        let bucket = match self.bucket(&bucket).await? {
            Ok(bucket) => bucket,
            Err(e) => return Ok(self.observed("set-many", Err(e))),
        };
        let result = bucket
            .set_many(key_values)
            .instrument(self.span("set-many"))
            .await
            .map_err(to_wit);
        Ok(self.observed("set-many", result))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> Outcome<()> {
        let limits = self.kv_limits();
        if let Err(e) = check_batch(limits, keys.len())
            .and_then(|()| keys.iter().try_for_each(|k| check_key(limits, k)))
        {
            return Ok(Err(e));
        }
        let bucket = match self.bucket(&bucket).await? {
            Ok(bucket) => bucket,
            Err(e) => return Ok(self.observed("delete-many", Err(e))),
        };
        let result = bucket
            .delete_many(keys)
            .instrument(self.span("delete-many"))
            .await
            .map_err(to_wit);
        Ok(self.observed("delete-many", result))
    }
}
