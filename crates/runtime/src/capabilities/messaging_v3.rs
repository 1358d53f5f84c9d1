//! `wasmcloud:messaging@0.3.0` (`types`, `producer`, `request-reply`) on the same
//! [`trellis_messaging::Messaging`] backend a component's messaging link gives 0.2.0's
//! `consumer`. The `incoming-handler` export is invoked from [`crate::MessageComponent`].
//!
//! What the guest's resources are here:
//!
//! - A `client` is a link name. `connect("")` takes the link the instance's calls of
//!   `wasmcloud:messaging` go through (`default`, unless the guest chose another with
//!   `wasmcloud:bus/lattice.set-link-name`); `connect(name)` takes the messaging link called
//!   `name`, and fails with `error::connection` when the component has none. wasmCloud's host
//!   accepts only the name already chosen and refuses any other; choosing directly here is a
//!   superset of that. `disconnect` makes later calls through that client fail; the link and
//!   its broker connection stay, shared with the component's other instances.
//! - A `message` is a payload with a content type and metadata. A message the host delivered
//!   or returned as a reply also knows the topic it came on and its reply subject; one the
//!   guest made has neither. On the wire, metadata entries are headers and the content type
//!   is the `Content-Type` header (NATS has no field for it); on receipt `Content-Type` comes
//!   back as the content type and every other header as metadata.
//! - `request-options` is a timeout and a count of replies. A request waits for at most the
//!   timeout, or `--max-request-timeout` (30 s by default) when none is set or a longer one
//!   is asked for, and collects up to the expected replies (1 when unset or 0), at most
//!   `--max-request-replies` (64 by default; more is an `error::other`).
//!
//! `request` comes in two shapes: the one wasmCloud's component SDK and examples are built
//! against, `request(client, message, options)`, which sends to the message's own topic (so
//! only a message the guest received can be sent again as a request: one the guest made has
//! no topic and is refused); and the one wasmCloud's host runtime declares,
//! `request(client, topic, message, options)`. Both are served: the linker defines `request`
//! as a dynamic function that looks at the arguments it is called with ([`add_to_linker`]).
//! For the same reason `message.topic` answers a plain `topic` (empty for a guest-made
//! message) or an `option<topic>`, whichever the guest imports.
//!
//! Every message a guest hands over is bounded by `--max-message-size` (data and metadata
//! together) and checked against NATS's subject and header rules before a backend sees it.

use super::Linked;
use bindings::wasmcloud::messaging::{producer, request_reply, types};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;
use trellis_messaging::{Limits, Message, Messaging};
use wasmtime::StoreContextMut;
use wasmtime::component::types::{ComponentFunc, Type};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable, Val};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/messaging-0.3.0",
        inline: "
            package trellis:messaging-three;
            world messaging-three {
                import wasmcloud:messaging/types@0.3.0;
                import wasmcloud:messaging/producer@0.3.0;
                import wasmcloud:messaging/request-reply@0.3.0;
                export wasmcloud:messaging/incoming-handler@0.3.0;
            }
        ",
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasmcloud:messaging/types.client": super::Client,
            "wasmcloud:messaging/types.message": super::GuestMessage,
            "wasmcloud:messaging/request-reply.request-options": super::RequestOptions,
        },
    });
}

/// The name the 0.3.0 interfaces are defined under in the linker.
const REQUEST_REPLY: &str = "wasmcloud:messaging/request-reply@0.3.0";
const TYPES: &str = "wasmcloud:messaging/types@0.3.0";

/// The header a message's content type travels in.
const CONTENT_TYPE: &str = "Content-Type";

/// The host side of a guest's `client`: the messaging link its calls go through.
pub struct Client {
    link_name: String,
    disconnected: bool,
}

/// The host side of a guest's `message`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestMessage {
    /// The subject it arrived on; `None` for a message the guest made.
    topic: Option<String>,
    /// Where replies to it go, when it came with a reply subject.
    reply_to: Option<String>,
    data: Vec<u8>,
    content_type: Option<String>,
    metadata: Option<Vec<(String, String)>>,
}

impl GuestMessage {
    /// A message the host hands the guest: delivered from a subscription or returned as a
    /// reply. `Content-Type` becomes the content type, every other header metadata.
    pub(crate) fn received(message: Message) -> Self {
        let mut content_type = None;
        let mut metadata = Vec::new();
        for (name, value) in message.headers {
            if name.eq_ignore_ascii_case(CONTENT_TYPE) && content_type.is_none() {
                content_type = Some(value);
            } else {
                metadata.push((name, value));
            }
        }
        Self {
            topic: Some(message.subject),
            reply_to: message.reply_to,
            data: message.body.to_vec(),
            content_type,
            metadata: (!metadata.is_empty()).then_some(metadata),
        }
    }

    /// What goes on the wire to `subject`: the metadata as headers, the content type as
    /// `Content-Type` (replacing a metadata entry of that name).
    fn outgoing(&self, subject: String) -> Message {
        let mut headers: Vec<(String, String)> = self
            .metadata
            .iter()
            .flatten()
            .filter(|(k, _)| !(self.content_type.is_some() && k.eq_ignore_ascii_case(CONTENT_TYPE)))
            .cloned()
            .collect();
        if let Some(content_type) = &self.content_type {
            headers.push((CONTENT_TYPE.to_owned(), content_type.clone()));
        }
        Message {
            headers,
            ..Message::new(subject, self.data.clone())
        }
    }
}

/// The host side of a guest's `request-options`.
#[derive(Debug, Default, Clone)]
pub struct RequestOptions {
    timeout_ms: Option<u32>,
    expected_replies: Option<u32>,
}

/// A messaging link and its running backend.
type Ready<'a> = (&'a Linked<dyn Messaging>, Arc<dyn Messaging>);

/// A component's messaging links by name ([`crate::links::Links`] is one).
pub(crate) trait MessagingLinks: Sync {
    /// The messaging link called `link_name`, if the component has one.
    fn messaging(&self, link_name: &str) -> Option<&Linked<dyn Messaging>>;
}

/// What the 0.3.0 bindings see of an instance: its links, its choice of link name, the
/// host's bounds and the resource table its clients and messages live in.
pub(crate) struct MessagingV3View<'a> {
    /// The component's links, by name.
    pub(crate) links: &'a dyn MessagingLinks,
    /// The link name the instance chose for `wasmcloud:messaging` (`default` unless it
    /// chose): what `connect("")` and `reply` use.
    pub(crate) link_name: &'a str,
    /// The host's messaging bounds.
    pub(crate) limits: &'a Limits,
    /// The instance's resource table.
    pub(crate) table: &'a mut ResourceTable,
    /// Where its operations are reported.
    pub(crate) observing: super::Observing<'a>,
}

/// Tells the generated `add_to_linker` functions that the host traits are implemented by a
/// [`MessagingV3View`] borrowed from the store.
struct HasMessagingV3;

impl HasData for HasMessagingV3 {
    type Data<'a> = MessagingV3View<'a>;
}

/// Adds `wasmcloud:messaging/{types,producer,request-reply}@0.3.0` to `linker`; `view` picks
/// out what these bindings need from the store's data.
///
/// `request` and `message.topic` are then defined again as dynamic functions, which take
/// either of the two shapes of 0.3.0 that guests are built with (see the module docs); the
/// typed definitions they replace are never called.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> MessagingV3View<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasMessagingV3>(linker, view)?;
    producer::add_to_linker::<T, HasMessagingV3>(linker, view)?;
    request_reply::add_to_linker::<T, HasMessagingV3>(linker, view)?;
    linker.allow_shadowing(true);
    let defined = define_dynamic(linker, view);
    linker.allow_shadowing(false);
    defined
}

fn define_dynamic<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> MessagingV3View<'_>,
) -> wasmtime::Result<()> {
    linker.instance(REQUEST_REPLY)?.func_new_async(
        "request",
        move |store, ty, params, results| {
            Box::new(dynamic_request(store, view, ty, params, results))
        },
    )?;
    linker.instance(TYPES)?.func_new_async(
        "[method]message.topic",
        move |mut store, ty, params, results| {
            Box::new(async move {
                let [Val::Resource(message)] = params else {
                    wasmtime::bail!("message.topic called with {params:?}");
                };
                let message: Resource<GuestMessage> = message.try_into_resource(&mut store)?;
                let topic = view(store.data_mut()).table.get(&message)?.topic.clone();
                results[0] = match ty.results().next() {
                    Some(Type::Option(_)) => Val::Option(topic.map(|t| Box::new(Val::String(t)))),
                    _ => Val::String(topic.unwrap_or_default()),
                };
                Ok(())
            })
        },
    )?;
    Ok(())
}

/// `request` in either shape: `(client, message, options)` or `(client, topic, message,
/// options)`.
async fn dynamic_request<T: Send + 'static>(
    mut store: StoreContextMut<'_, T>,
    view: fn(&mut T) -> MessagingV3View<'_>,
    _ty: ComponentFunc,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let (client, topic, message, options) = match params {
        [Val::Resource(c), Val::Resource(m), Val::Option(o)] => (c, None, m, o),
        [
            Val::Resource(c),
            Val::String(t),
            Val::Resource(m),
            Val::Option(o),
        ] => (c, Some(t.clone()), m, o),
        _ => wasmtime::bail!("request-reply.request called with unexpected arguments {params:?}"),
    };
    let client: Resource<Client> = client.try_into_resource(&mut store)?;
    let message: Resource<GuestMessage> = message.try_into_resource(&mut store)?;
    let options: Option<Resource<RequestOptions>> = match options.as_deref() {
        None => None,
        Some(Val::Resource(o)) => Some(o.try_into_resource(&mut store)?),
        Some(other) => wasmtime::bail!("request options of unexpected type {other:?}"),
    };
    let outcome = view(store.data_mut())
        .send_request(client, topic, message, options)
        .await?;
    results[0] = match outcome {
        Ok(replies) => {
            let replies = replies
                .into_iter()
                .map(|r| Ok(Val::Resource(r.try_into_resource_any(&mut store)?)))
                .collect::<wasmtime::Result<Vec<_>>>()?;
            Val::Result(Ok(Some(Box::new(Val::List(replies)))))
        }
        Err(e) => Val::Result(Err(Some(Box::new(error_val(e))))),
    };
    Ok(())
}

/// An `error` as a dynamic value.
fn error_val(e: types::Error) -> Val {
    let (case, text) = match e {
        types::Error::Timeout => ("timeout", None),
        types::Error::Connection(t) => ("connection", Some(t)),
        types::Error::PermissionDenied(t) => ("permission-denied", Some(t)),
        types::Error::Other(t) => ("other", Some(t)),
    };
    Val::Variant(case.to_owned(), text.map(|t| Box::new(Val::String(t))))
}

/// What a guest's `error` says, for logs.
pub(crate) fn describe(e: &types::Error) -> String {
    match e {
        types::Error::Timeout => "timeout".to_owned(),
        types::Error::Connection(t) => format!("connection: {t}"),
        types::Error::PermissionDenied(t) => format!("permission denied: {t}"),
        types::Error::Other(t) => t.clone(),
    }
}

/// A backend's error as the guest sees it: a timeout is `timeout`, an unavailable broker
/// `connection`, anything else `other`, each with the backend's text.
fn to_wit(e: trellis_messaging::Error) -> types::Error {
    use trellis_messaging::Error as E;
    match e {
        E::TimedOut { .. } => types::Error::Timeout,
        E::Backend(text) => types::Error::Connection(text),
        other => types::Error::Other(other.to_string()),
    }
}

type Outcome<T> = wasmtime::Result<Result<T, types::Error>>;

impl<'a> MessagingV3View<'a> {
    /// The link behind `client` and its backend, or why there is none.
    fn backend(
        &self,
        client: &Resource<Client>,
    ) -> wasmtime::Result<Result<Ready<'a>, types::Error>> {
        let client = self.table.get(client)?;
        if client.disconnected {
            return Ok(Err(types::Error::Connection(format!(
                "this client of link `{}` was disconnected; connect again",
                client.link_name
            ))));
        }
        Ok(self.ready(&client.link_name))
    }

    fn linked(&self, link_name: &str) -> Result<&'a Linked<dyn Messaging>, types::Error> {
        self.links
            .messaging(link_name)
            .ok_or_else(|| types::Error::Connection(super::no_link("messaging", link_name)))
    }

    /// The link called `link_name` and its backend, or why there is none.
    fn ready(&self, link_name: &str) -> Result<Ready<'a>, types::Error> {
        let linked = self.linked(link_name)?;
        let backend = linked.ready().map_err(types::Error::Connection)?;
        Ok((linked, backend.clone()))
    }

    /// Publishes `outgoing` through `linked` as `operation`, traced and counted.
    fn publish(
        &self,
        (linked, backend): Ready<'a>,
        operation: &'static str,
        outgoing: Message,
    ) -> impl Future<Output = Result<(), types::Error>> + use<'a> {
        let observing = self.observing;
        async move {
            let publish = backend.publish(outgoing);
            observing
                .traced(Some(linked), "messaging", operation, publish)
                .await
                .map_err(to_wit)
        }
    }

    /// Refuses a message over the size bound or breaking NATS's rules.
    fn check(&self, message: &Message) -> Result<(), types::Error> {
        let len = message.payload_len();
        let max = self.limits.max_body_bytes;
        if len > max {
            return Err(types::Error::Other(format!(
                "message is {len} bytes (data and metadata), over the limit of {max} bytes (host flag --max-message-size)"
            )));
        }
        message
            .validate()
            .map_err(|e| types::Error::Other(e.to_string()))
    }

    /// How long a request waits and how many replies it collects.
    fn request_bounds(
        &self,
        options: Option<RequestOptions>,
    ) -> Result<(Duration, NonZeroUsize), types::Error> {
        let options = options.unwrap_or_default();
        let max = self.limits.max_request_timeout;
        let timeout = options
            .timeout_ms
            .map_or(max, |ms| Duration::from_millis(u64::from(ms)).min(max));
        let wanted = options.expected_replies.unwrap_or(1).max(1);
        let limit = self.limits.max_request_replies;
        let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
        if wanted > limit {
            return Err(types::Error::Other(format!(
                "a request may collect at most {limit} replies, not {wanted} (host flag --max-request-replies)"
            )));
        }
        Ok((
            timeout,
            NonZeroUsize::new(wanted).unwrap_or(NonZeroUsize::MIN),
        ))
    }

    /// `request` in either shape; `topic` is `None` in the SDK's shape, where the message's
    /// own topic is the destination.
    async fn send_request(
        &mut self,
        client: Resource<Client>,
        topic: Option<String>,
        message: Resource<GuestMessage>,
        options: Option<Resource<RequestOptions>>,
    ) -> Outcome<Vec<Resource<GuestMessage>>> {
        let options = options.map(|o| self.table.delete(o)).transpose()?;
        let guest_message = self.table.get(&message)?;
        let Some(topic) = topic.or_else(|| guest_message.topic.clone()) else {
            return Ok(Err(types::Error::Other(
                "this message was made by the component and has no topic to send the request to: request with a message the component received, or with the request(client, topic, message, options) shape".to_owned(),
            )));
        };
        let outgoing = guest_message.outgoing(topic);
        let bounds = self.request_bounds(options);
        let (timeout, replies) = match bounds.and_then(|b| self.check(&outgoing).map(|()| b)) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let (linked, backend) = match self.backend(&client)? {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let request = backend.request_many(outgoing, timeout, replies);
        match self
            .observing
            .traced(Some(linked), "messaging", "request", request)
            .await
        {
            Ok(replies) => Ok(Ok(replies
                .into_iter()
                .map(|r| self.table.push(GuestMessage::received(r)))
                .collect::<Result<_, _>>()?)),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }
}

impl types::Host for MessagingV3View<'_> {}

impl types::HostClient for MessagingV3View<'_> {
    async fn connect(&mut self, name: String) -> Outcome<Resource<Client>> {
        let link_name = if name.is_empty() {
            self.link_name.to_owned()
        } else {
            name
        };
        if let Err(e) = self.linked(&link_name) {
            return Ok(Err(e));
        }
        Ok(Ok(self.table.push(Client {
            link_name,
            disconnected: false,
        })?))
    }

    async fn disconnect(&mut self, client: Resource<Client>) -> Outcome<()> {
        self.table.get_mut(&client)?.disconnected = true;
        Ok(Ok(()))
    }

    async fn drop(&mut self, client: Resource<Client>) -> wasmtime::Result<()> {
        self.table.delete(client)?;
        Ok(())
    }
}

impl types::HostMessage for MessagingV3View<'_> {
    async fn new(&mut self, data: Vec<u8>) -> wasmtime::Result<Resource<GuestMessage>> {
        Ok(self.table.push(GuestMessage {
            data,
            ..GuestMessage::default()
        })?)
    }

    async fn topic(&mut self, message: Resource<GuestMessage>) -> wasmtime::Result<String> {
        // Replaced by the dynamic definition in `add_to_linker`, which serves both shapes.
        Ok(self.table.get(&message)?.topic.clone().unwrap_or_default())
    }

    async fn content_type(
        &mut self,
        message: Resource<GuestMessage>,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&message)?.content_type.clone())
    }

    async fn set_content_type(
        &mut self,
        message: Resource<GuestMessage>,
        content_type: String,
    ) -> wasmtime::Result<()> {
        self.table.get_mut(&message)?.content_type = Some(content_type);
        Ok(())
    }

    async fn data(&mut self, message: Resource<GuestMessage>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&message)?.data.clone())
    }

    async fn set_data(
        &mut self,
        message: Resource<GuestMessage>,
        data: Vec<u8>,
    ) -> wasmtime::Result<()> {
        self.table.get_mut(&message)?.data = data;
        Ok(())
    }

    async fn metadata(
        &mut self,
        message: Resource<GuestMessage>,
    ) -> wasmtime::Result<Option<types::Metadata>> {
        Ok(self.table.get(&message)?.metadata.clone())
    }

    async fn add_metadata(
        &mut self,
        message: Resource<GuestMessage>,
        key: String,
        value: String,
    ) -> wasmtime::Result<()> {
        let metadata = self
            .table
            .get_mut(&message)?
            .metadata
            .get_or_insert_with(Vec::new);
        metadata.retain(|(k, _)| *k != key);
        metadata.push((key, value));
        Ok(())
    }

    async fn set_metadata(
        &mut self,
        message: Resource<GuestMessage>,
        meta: types::Metadata,
    ) -> wasmtime::Result<()> {
        self.table.get_mut(&message)?.metadata = Some(meta);
        Ok(())
    }

    async fn remove_metadata(
        &mut self,
        message: Resource<GuestMessage>,
        key: String,
    ) -> wasmtime::Result<()> {
        if let Some(metadata) = &mut self.table.get_mut(&message)?.metadata {
            metadata.retain(|(k, _)| *k != key);
        }
        Ok(())
    }

    async fn drop(&mut self, message: Resource<GuestMessage>) -> wasmtime::Result<()> {
        self.table.delete(message)?;
        Ok(())
    }
}

impl producer::Host for MessagingV3View<'_> {
    async fn send(
        &mut self,
        client: Resource<Client>,
        topic: String,
        message: Resource<GuestMessage>,
    ) -> Outcome<()> {
        let message = self.table.delete(message)?;
        let outgoing = message.outgoing(topic);
        if let Err(e) = self.check(&outgoing) {
            return Ok(Err(e));
        }
        let ready = match self.backend(&client)? {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.publish(ready, "send", outgoing).await)
    }
}

impl request_reply::Host for MessagingV3View<'_> {
    async fn request(
        &mut self,
        client: Resource<Client>,
        message: Resource<GuestMessage>,
        options: Option<Resource<RequestOptions>>,
    ) -> Outcome<Vec<Resource<GuestMessage>>> {
        // Replaced by the dynamic definition in `add_to_linker`, which serves both shapes.
        self.send_request(client, None, message, options).await
    }

    async fn reply(
        &mut self,
        reply_to: Resource<GuestMessage>,
        message: Resource<GuestMessage>,
    ) -> Outcome<()> {
        let message = self.table.delete(message)?;
        let Some(subject) = self.table.get(&reply_to)?.reply_to.clone() else {
            let made_here = self.table.get(&reply_to)?.topic.is_none();
            return Ok(Err(types::Error::Other(if made_here {
                "cannot reply to a message the component made itself: it has no reply subject; reply to a message the component received".to_owned()
            } else {
                "the message was not sent as a request: it has no reply subject to answer on"
                    .to_owned()
            })));
        };
        let outgoing = message.outgoing(subject);
        if let Err(e) = self.check(&outgoing) {
            return Ok(Err(e));
        }
        // A reply goes through the link the instance uses for messaging, like wasmCloud's.
        let ready = match self.ready(self.link_name) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.publish(ready, "reply", outgoing).await)
    }
}

impl request_reply::HostRequestOptions for MessagingV3View<'_> {
    async fn new(&mut self) -> wasmtime::Result<Resource<RequestOptions>> {
        Ok(self.table.push(RequestOptions::default())?)
    }

    async fn set_timeout_ms(
        &mut self,
        options: Resource<RequestOptions>,
        timeout_ms: u32,
    ) -> wasmtime::Result<()> {
        self.table.get_mut(&options)?.timeout_ms = Some(timeout_ms);
        Ok(())
    }

    async fn set_expected_replies(
        &mut self,
        options: Resource<RequestOptions>,
        expected_replies: u32,
    ) -> wasmtime::Result<()> {
        self.table.get_mut(&options)?.expected_replies = Some(expected_replies);
        Ok(())
    }

    async fn drop(&mut self, options: Resource<RequestOptions>) -> wasmtime::Result<()> {
        self.table.delete(options)?;
        Ok(())
    }
}

/// Puts a message delivered from a subscription in the store's table, for `handle`.
pub(crate) fn push_received(
    table: &mut ResourceTable,
    message: Message,
) -> wasmtime::Result<Resource<GuestMessage>> {
    Ok(table.push(GuestMessage::received(message))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::Backend;
    use crate::links::Links;
    use futures::StreamExt;
    use std::sync::atomic::AtomicBool;
    use trellis_control::LinkName;
    use types::{HostClient, HostMessage};

    fn borrow<T: 'static>(r: &Resource<T>) -> Resource<T> {
        Resource::new_borrow(r.rep())
    }

    #[tokio::test]
    async fn clients_name_links_and_refusals_are_error_values() {
        let broker = Arc::new(trellis_messaging::memory::InProcess::new());
        let mut links = Links::default();
        links.capabilities_mut(&LinkName::default()).messaging = Some(Linked {
            provider: "broker".into(),
            provider_id: "broker".into(),
            backend: Backend::Ready(broker.clone()),
            stopped: Arc::new(AtomicBool::new(false)),
        });
        let limits = Limits::default();
        let mut table = ResourceTable::new();
        let recorder = Arc::new(crate::observe::Recorder::default());
        let observer: Arc<dyn crate::Observer> = recorder.clone();
        let mut view = MessagingV3View {
            links: &links,
            link_name: "default",
            limits: &limits,
            table: &mut table,
            observing: crate::capabilities::Observing {
                observer: Some(&observer),
                request_span: None,
            },
        };

        // "" is the link in use, a name is that link, a missing one a connection error.
        let client = view
            .connect(String::new())
            .await
            .expect("no trap")
            .expect("default");
        view.connect("default".into())
            .await
            .expect("no trap")
            .expect("named");
        let missing = view.connect("other".into()).await.expect("no trap");
        assert!(matches!(missing, Err(types::Error::Connection(m)) if m.contains("`other`")));

        // send publishes data and metadata.
        let mut sub = broker.subscribe("t.a", None).await.expect("subscribe");
        let m = HostMessage::new(&mut view, b"hi".to_vec())
            .await
            .expect("no trap");
        view.add_metadata(borrow(&m), "k".into(), "old".into())
            .await
            .expect("no trap");
        view.add_metadata(borrow(&m), "k".into(), "v".into())
            .await
            .expect("no trap");
        producer::Host::send(&mut view, borrow(&client), "t.a".into(), m)
            .await
            .expect("no trap")
            .expect("sent");
        let got = sub.next().await.expect("delivered");
        assert_eq!(
            (&got.body[..], got.headers),
            (&b"hi"[..], vec![("k".into(), "v".into())])
        );
        assert_eq!(recorder.take(), ["broker messaging send ok"]);

        // A message the guest made cannot be replied to, nor sent as a request.
        let mine = HostMessage::new(&mut view, Vec::new())
            .await
            .expect("no trap");
        let answer = HostMessage::new(&mut view, Vec::new())
            .await
            .expect("no trap");
        let refused = request_reply::Host::reply(&mut view, borrow(&mine), answer)
            .await
            .expect("no trap");
        assert!(matches!(refused, Err(types::Error::Other(m)) if m.contains("made itself")));
        let refused = view
            .send_request(borrow(&client), None, borrow(&mine), None)
            .await
            .expect("no trap");
        assert!(matches!(refused, Err(types::Error::Other(m)) if m.contains("no topic")));

        // Too many expected replies names the flag; a disconnected client refuses calls.
        let options = RequestOptions {
            expected_replies: Some(1000),
            ..RequestOptions::default()
        };
        let bounds = view.request_bounds(Some(options));
        assert!(
            matches!(bounds, Err(types::Error::Other(m)) if m.contains("--max-request-replies"))
        );
        view.disconnect(borrow(&client))
            .await
            .expect("no trap")
            .expect("disconnect");
        let m = HostMessage::new(&mut view, Vec::new())
            .await
            .expect("no trap");
        let refused = producer::Host::send(&mut view, borrow(&client), "t.a".into(), m)
            .await
            .expect("no trap");
        assert!(matches!(refused, Err(types::Error::Connection(_))));
        // Refused before the backend saw them: nothing was counted.
        assert_eq!(recorder.take(), Vec::<String>::new());
    }

    #[test]
    fn content_type_travels_as_a_header_and_comes_back_as_itself() {
        let mut m = GuestMessage {
            data: b"hi".to_vec(),
            content_type: Some("text/plain".into()),
            metadata: Some(vec![
                ("a".into(), "1".into()),
                ("content-type".into(), "ignored".into()),
            ]),
            ..GuestMessage::default()
        };
        let wire = m.outgoing("t.x".into());
        assert_eq!(
            wire.headers,
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("Content-Type".to_owned(), "text/plain".to_owned())
            ]
        );
        let back = GuestMessage::received(Message {
            reply_to: Some("r".into()),
            ..wire
        });
        assert_eq!(back.topic.as_deref(), Some("t.x"));
        assert_eq!(back.reply_to.as_deref(), Some("r"));
        assert_eq!(back.content_type.as_deref(), Some("text/plain"));
        assert_eq!(back.metadata, Some(vec![("a".to_owned(), "1".to_owned())]));
        m.content_type = None;
        m.metadata = None;
        assert!(m.outgoing("t".into()).headers.is_empty());
        assert_eq!(GuestMessage::received(Message::new("t", "")).metadata, None);
    }
}
