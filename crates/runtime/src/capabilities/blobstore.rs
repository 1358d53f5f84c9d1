//! `wasi:blobstore/{types,container,blobstore}@0.2.0-draft` on a
//! [`trellis_blobstore::Blobstore`] backend.
//!
//! Values move whole: a guest writes an object through an `output-stream` into a buffer
//! bounded by [`trellis_blobstore::Limits::max_object_bytes`], and reads one back as bytes or
//! as an `input-stream` over bytes already fetched. A write past the limit fails the stream
//! write (a guest-visible error), not the instance.

use super::Linked;
use super::bindings::wasi::blobstore::{blobstore, container, types};
use crate::sync::lock;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use trellis_blobstore::{Blobstore, Limits};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, OutputStream, Pollable, StreamError, StreamResult,
};

/// The host side of `outgoing-value`: the bytes a guest has written so far.
pub struct OutgoingValue {
    buffer: Arc<Mutex<Buffer>>,
    stream_taken: bool,
    /// Where `write-data` put it, so that bytes written after that call still land.
    written_to: Option<WrittenTo>,
}

/// Where an outgoing value was written: the container, object and length written then.
struct WrittenTo {
    container: ContainerHandle,
    object: String,
    len: usize,
}

#[derive(Default)]
struct Buffer {
    bytes: BytesMut,
    overflowed: bool,
}

/// The host side of `incoming-value`: bytes already read from the backend.
pub struct IncomingValue {
    data: Bytes,
}

/// The host side of `container`.
pub struct ContainerHandle {
    name: String,
    backend: Arc<dyn Blobstore>,
    /// The link it was opened through, which its operations are counted against.
    linked: Linked<dyn Blobstore>,
}

/// The host side of `stream-object-names`.
pub struct ObjectNames {
    names: VecDeque<String>,
}

/// The output stream a guest writes an object through.
struct BoundedWriter {
    buffer: Arc<Mutex<Buffer>>,
    limit: u64,
}

#[async_trait::async_trait]
impl Pollable for BoundedWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for BoundedWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut buffer = lock(&self.buffer);
        if (buffer.bytes.len() + bytes.len()) as u64 > self.limit {
            buffer.overflowed = true;
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "object is larger than the limit of {} bytes (host flag --max-blob-size)",
                self.limit
            )));
        }
        buffer.bytes.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always accept a chunk; `write` refuses the one that crosses the limit with an
        // error the guest sees. Returning 0 here would make a blocking writer wait forever.
        Ok(64 * 1024)
    }
}

/// What the blobstore bindings see of an instance: its link, the host's bounds, and the
/// resource table its containers, values and streams live in.
pub(crate) struct BlobstoreView<'a> {
    /// The component's blobstore link, if it has one.
    pub(crate) linked: Option<&'a Linked<dyn Blobstore>>,
    /// The link name the instance chose for this capability (`default` unless it chose).
    pub(crate) link_name: &'a str,
    /// The host's blobstore bounds.
    pub(crate) limits: &'a Limits,
    /// The instance's resource table, shared with `wasi:io` for the streams.
    pub(crate) table: &'a mut ResourceTable,
    /// Where its operations are reported.
    pub(crate) observing: super::Observing<'a>,
}

/// Adds `wasi:blobstore/{types,container,blobstore}` to `linker`; `view` picks out what these
/// bindings need from the store's data, so they never name the store's type.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> BlobstoreView<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasBlobstore>(linker, view)?;
    container::add_to_linker::<T, HasBlobstore>(linker, view)?;
    blobstore::add_to_linker::<T, HasBlobstore>(linker, view)?;
    Ok(())
}

/// Tells the generated `add_to_linker` functions that the host traits are implemented by a
/// [`BlobstoreView`] borrowed from the store.
struct HasBlobstore;

impl HasData for HasBlobstore {
    type Data<'a> = BlobstoreView<'a>;
}

type Outcome<T> = wasmtime::Result<Result<T, String>>;

/// A blobstore link and its running backend.
type Ready<'a> = (&'a Linked<dyn Blobstore>, Arc<dyn Blobstore>);

impl<'a> BlobstoreView<'a> {
    /// The link chosen now and its backend, or what the guest hears when there is none.
    fn blobstore(&self) -> Result<Ready<'a>, String> {
        match self.linked {
            Some(linked) => Ok((linked, linked.ready()?.clone())),
            None => Err(super::no_link("blobstore", self.link_name)),
        }
    }

    /// A copy of the container behind `this`, to call its backend without holding the table.
    fn container(&self, this: &Resource<ContainerHandle>) -> wasmtime::Result<ContainerHandle> {
        let c = self.table.get(this)?;
        Ok(ContainerHandle {
            name: c.name.clone(),
            backend: c.backend.clone(),
            linked: c.linked.clone(),
        })
    }

    fn max_object_bytes(&self) -> u64 {
        self.limits.max_object_bytes
    }
}

/// Runs `operation` through `linked`, traced and counted; the guest sees errors as text.
async fn traced<T>(
    observing: super::Observing<'_>,
    linked: &Linked<dyn Blobstore>,
    operation: &'static str,
    operation_future: impl Future<Output = Result<T, trellis_blobstore::Error>>,
) -> Result<T, String> {
    observing
        .traced(Some(linked), "blobstore", operation, operation_future)
        .await
        .map_err(|e| e.to_string())
}

impl types::Host for BlobstoreView<'_> {}

impl types::HostOutgoingValue for BlobstoreView<'_> {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        Ok(self.table.push(OutgoingValue {
            buffer: Arc::default(),
            stream_taken: false,
            written_to: None,
        })?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        this: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let limit = self.max_object_bytes();
        let value = self.table.get_mut(&this)?;
        if value.stream_taken {
            return Ok(Err(()));
        }
        value.stream_taken = true;
        let writer: DynOutputStream = Box::new(BoundedWriter {
            buffer: value.buffer.clone(),
            limit,
        });
        Ok(Ok(self.table.push(writer)?))
    }

    async fn finish(&mut self, this: Resource<OutgoingValue>) -> Outcome<()> {
        let value = self.table.delete(this)?;
        let Some(WrittenTo {
            container,
            object,
            len,
        }) = value.written_to
        else {
            return Ok(Ok(()));
        };
        let (bytes, overflowed) = {
            let buffer = lock(&value.buffer);
            (buffer.bytes.clone().freeze(), buffer.overflowed)
        };
        if overflowed {
            return Ok(Err(too_large(self.max_object_bytes())));
        }
        if bytes.len() == len {
            return Ok(Ok(()));
        }
        let write = container
            .backend
            .write_data(&container.name, &object, bytes);
        Ok(traced(self.observing, &container.linked, "write-data", write).await)
    }

    async fn drop(&mut self, this: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

fn too_large(limit: u64) -> String {
    format!("object is larger than the limit of {limit} bytes (host flag --max-blob-size)")
}

impl types::HostIncomingValue for BlobstoreView<'_> {
    async fn incoming_value_consume_sync(
        &mut self,
        this: Resource<IncomingValue>,
    ) -> Outcome<Vec<u8>> {
        let value = self.table.delete(this)?;
        Ok(Ok(value.data.to_vec()))
    }

    async fn incoming_value_consume_async(
        &mut self,
        this: Resource<IncomingValue>,
    ) -> Outcome<Resource<DynInputStream>> {
        let value = self.table.delete(this)?;
        let stream: DynInputStream =
            Box::new(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(value.data));
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, this: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.data.len() as u64)
    }

    async fn drop(&mut self, this: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl container::Host for BlobstoreView<'_> {}

impl container::HostContainer for BlobstoreView<'_> {
    async fn name(&mut self, this: Resource<ContainerHandle>) -> Outcome<String> {
        Ok(Ok(self.table.get(&this)?.name.clone()))
    }

    async fn info(&mut self, this: Resource<ContainerHandle>) -> Outcome<types::ContainerMetadata> {
        let c = self.container(&this)?;
        let info = c.backend.container_info(&c.name);
        Ok(traced(self.observing, &c.linked, "container-info", info)
            .await
            .map(|i| types::ContainerMetadata {
                name: i.name,
                created_at: i.created_at,
            }))
    }

    async fn get_data(
        &mut self,
        this: Resource<ContainerHandle>,
        name: String,
        start: u64,
        end: u64,
    ) -> Outcome<Resource<IncomingValue>> {
        let c = self.container(&this)?;
        if end < start {
            return Ok(Err(format!(
                "invalid range: end {end} is before start {start}"
            )));
        }
        let max = self.max_object_bytes();
        let get = c.backend.get_data(&c.name, &name, start, end, max);
        match traced(self.observing, &c.linked, "get-data", get).await {
            Ok(data) => Ok(Ok(self.table.push(IncomingValue { data })?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn write_data(
        &mut self,
        this: Resource<ContainerHandle>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> Outcome<()> {
        let c = self.container(&this)?;
        let limit = self.max_object_bytes();
        let value = self.table.get_mut(&data)?;
        let (bytes, overflowed) = {
            let buffer = lock(&value.buffer);
            (buffer.bytes.clone().freeze(), buffer.overflowed)
        };
        if overflowed {
            return Ok(Err(too_large(limit)));
        }
        let write = c.backend.write_data(&c.name, &name, bytes.clone());
        let written = traced(self.observing, &c.linked, "write-data", write).await;
        self.table.get_mut(&data)?.written_to = Some(WrittenTo {
            container: c,
            object: name,
            len: bytes.len(),
        });
        Ok(written)
    }

    async fn list_objects(
        &mut self,
        this: Resource<ContainerHandle>,
    ) -> Outcome<Resource<ObjectNames>> {
        let c = self.container(&this)?;
        let list = c.backend.list_objects(&c.name);
        match traced(self.observing, &c.linked, "list-objects", list).await {
            Ok(names) => Ok(Ok(self.table.push(ObjectNames {
                names: names.into(),
            })?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete_object(
        &mut self,
        this: Resource<ContainerHandle>,
        name: String,
    ) -> Outcome<()> {
        let c = self.container(&this)?;
        let delete = c.backend.delete_object(&c.name, &name);
        Ok(traced(self.observing, &c.linked, "delete-object", delete).await)
    }

    async fn delete_objects(
        &mut self,
        this: Resource<ContainerHandle>,
        names: Vec<String>,
    ) -> Outcome<()> {
        let c = self.container(&this)?;
        let delete = async {
            for name in &names {
                c.backend.delete_object(&c.name, name).await?;
            }
            Ok(())
        };
        Ok(traced(self.observing, &c.linked, "delete-objects", delete).await)
    }

    async fn has_object(&mut self, this: Resource<ContainerHandle>, name: String) -> Outcome<bool> {
        let c = self.container(&this)?;
        let has = c.backend.has_object(&c.name, &name);
        Ok(traced(self.observing, &c.linked, "has-object", has).await)
    }

    async fn object_info(
        &mut self,
        this: Resource<ContainerHandle>,
        name: String,
    ) -> Outcome<types::ObjectMetadata> {
        let c = self.container(&this)?;
        let info = c.backend.object_info(&c.name, &name);
        Ok(traced(self.observing, &c.linked, "object-info", info)
            .await
            .map(|i| types::ObjectMetadata {
                name: i.name,
                container: i.container,
                created_at: i.created_at,
                size: i.size,
            }))
    }

    async fn clear(&mut self, this: Resource<ContainerHandle>) -> Outcome<()> {
        let c = self.container(&this)?;
        let clear = c.backend.clear(&c.name);
        Ok(traced(self.observing, &c.linked, "clear", clear).await)
    }

    async fn drop(&mut self, this: Resource<ContainerHandle>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl container::HostStreamObjectNames for BlobstoreView<'_> {
    async fn read_stream_object_names(
        &mut self,
        this: Resource<ObjectNames>,
        len: u64,
    ) -> Outcome<(Vec<String>, bool)> {
        let names = &mut self.table.get_mut(&this)?.names;
        let n = usize::try_from(len).unwrap_or(usize::MAX).min(names.len());
        let page: Vec<String> = names.drain(..n).collect();
        Ok(Ok((page, names.is_empty())))
    }

    async fn skip_stream_object_names(
        &mut self,
        this: Resource<ObjectNames>,
        num: u64,
    ) -> Outcome<(u64, bool)> {
        let names = &mut self.table.get_mut(&this)?.names;
        let n = usize::try_from(num).unwrap_or(usize::MAX).min(names.len());
        names.drain(..n);
        Ok(Ok((n as u64, names.is_empty())))
    }

    async fn drop(&mut self, this: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl blobstore::Host for BlobstoreView<'_> {
    async fn create_container(&mut self, name: String) -> Outcome<Resource<ContainerHandle>> {
        let (linked, backend) = match self.blobstore() {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let create = backend.create_container(&name);
        match traced(self.observing, linked, "create-container", create).await {
            Ok(_) => Ok(Ok(self.table.push(ContainerHandle {
                name,
                backend,
                linked: linked.clone(),
            })?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn get_container(&mut self, name: String) -> Outcome<Resource<ContainerHandle>> {
        let (linked, backend) = match self.blobstore() {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let info = backend.container_info(&name);
        match traced(self.observing, linked, "get-container", info).await {
            Ok(_) => Ok(Ok(self.table.push(ContainerHandle {
                name,
                backend,
                linked: linked.clone(),
            })?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete_container(&mut self, name: String) -> Outcome<()> {
        let (linked, backend) = match self.blobstore() {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let delete = backend.delete_container(&name);
        Ok(traced(self.observing, linked, "delete-container", delete).await)
    }

    async fn container_exists(&mut self, name: String) -> Outcome<bool> {
        let (linked, backend) = match self.blobstore() {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let exists = backend.container_exists(&name);
        Ok(traced(self.observing, linked, "container-exists", exists).await)
    }

    async fn copy_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Outcome<()> {
        let (linked, backend) = match self.blobstore() {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let copy = backend.copy_object(&src.container, &src.object, &dest.container, &dest.object);
        Ok(traced(self.observing, linked, "copy-object", copy).await)
    }

    async fn move_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Outcome<()> {
        let (linked, backend) = match self.blobstore() {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let rename =
            backend.move_object(&src.container, &src.object, &dest.container, &dest.object);
        Ok(traced(self.observing, linked, "move-object", rename).await)
    }
}
