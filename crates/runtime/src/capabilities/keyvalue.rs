//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` on a [`trellis_keyvalue::KeyValue`]
//! backend.

use super::Linked;
use super::bindings::wasi::keyvalue::{atomics, batch, store};
use std::sync::Arc;
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

/// The host side of a guest's `bucket` resource.
pub struct BucketHandle {
    bucket: Arc<dyn Bucket>,
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
    fn bucket(&self, handle: &Resource<BucketHandle>) -> wasmtime::Result<Arc<dyn Bucket>> {
        Ok(self.table.get(handle)?.bucket.clone())
    }

    fn kv_limits(&self) -> &Limits {
        self.limits
    }
}

type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

impl store::Host for KeyValueView<'_> {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<BucketHandle>> {
        let Some(linked) = self.linked else {
            // The deploy-time check refuses a component that imports wasi:keyvalue without a
            // link, so this is reached only by a component linked on another interface.
            return Ok(Err(store::Error::Other(super::no_link(
                "key-value",
                self.link_name,
            ))));
        };
        let backend = match linked.ready() {
            Ok(b) => b.clone(),
            Err(message) => return Ok(Err(store::Error::Other(message))),
        };
        match backend.open(&identifier).await {
            Ok(bucket) => Ok(Ok(self.table.push(BucketHandle { bucket })?)),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(&mut self, this: Resource<BucketHandle>, key: String) -> Outcome<Option<Vec<u8>>> {
        if let Err(e) = check_key(self.kv_limits(), &key) {
            return Ok(Err(e));
        }
        let bucket = self.bucket(&this)?;
        Ok(bucket.get(&key).await.map_err(to_wit))
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
        let bucket = self.bucket(&this)?;
        Ok(bucket.set(&key, value).await.map_err(to_wit))
    }

    async fn delete(&mut self, this: Resource<BucketHandle>, key: String) -> Outcome<()> {
        if let Err(e) = check_key(self.kv_limits(), &key) {
            return Ok(Err(e));
        }
        let bucket = self.bucket(&this)?;
        Ok(bucket.delete(&key).await.map_err(to_wit))
    }

    async fn exists(&mut self, this: Resource<BucketHandle>, key: String) -> Outcome<bool> {
        if let Err(e) = check_key(self.kv_limits(), &key) {
            return Ok(Err(e));
        }
        let bucket = self.bucket(&this)?;
        Ok(bucket.exists(&key).await.map_err(to_wit))
    }

    async fn list_keys(
        &mut self,
        this: Resource<BucketHandle>,
        cursor: Option<u64>,
    ) -> Outcome<store::KeyResponse> {
        let bucket = self.bucket(&this)?;
        let limit = self.kv_limits().list_page_size;
        Ok(bucket
            .list_keys(cursor, limit)
            .await
            .map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(to_wit))
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
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.increment(&key, delta).await.map_err(to_wit))
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
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.get_many(keys).await.map_err(to_wit))
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
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.set_many(key_values).await.map_err(to_wit))
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
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.delete_many(keys).await.map_err(to_wit))
    }
}
