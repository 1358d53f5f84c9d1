//! Calls between components on different hosts: the wRPC protocol over NATS, as
//! `wrpc-transport-nats` (wasmCloud v1) speaks it, for calls whose arguments and results are
//! plain values.
//!
//! A call to `instance.function` of component `target` in lattice `L`:
//!
//! 1. The caller publishes on `L.target.wrpc.0.0.1.{instance}.{function}`, with a fresh inbox
//!    subject `rx` as the reply subject, headers `source-id` and `link-name`, and as much of
//!    the encoded arguments as fits in one message.
//! 2. A host running the target (hosts running the same component share a queue group)
//!    answers on `rx` with an empty message whose reply subject is its own inbox `srx`: the
//!    handshake. If arguments did not fit, the caller sends the rest on `srx.params`, then
//!    an empty message to end them.
//!    Both inboxes are under `_INBOX_RPC.L` ([`inbox_prefix`]), so everything a call sends
//!    is on `L.*.wrpc.>` or `_INBOX_RPC.L.>`: the two patterns a credential for calls alone
//!    needs.
//! 3. The callee publishes the encoded results on `rx.results`, in as many messages as they
//!    need, then an empty message to end them.
//!
//! The fast path, between Trellis hosts: a caller whose arguments all fit in the first message
//! says so with the header `trellis-fast-path: 1` ([`FAST_PATH_HEADER`]). A Trellis callee
//! that sees it sends no handshake (the caller has nothing more to send) and no empty message
//! after the results: its last results message carries `trellis-fast-path: end` instead. A
//! call is then one message each way, as a plain NATS request/reply is. A plain wRPC callee
//! ignores the header and answers as above, which a Trellis caller understands; a plain wRPC
//! caller sends no such header and gets exactly the exchange above.
//!
//! Errors: NATS answers a call to a component no host runs with a no-responders status, which
//! the caller reports as "not running". When the callee fails (trap, deadline, bad
//! arguments), Trellis hosts end the results with an empty message carrying the reason, with
//! its causes, in a `trellis-error` header; wRPC peers that do not know the header see the results end early.
//! Bytes are opaque here: the runtime encodes and decodes values, and tells this module when
//! it has all of them through the `complete` callbacks.
//!
//! A client reads its one inbox subscription on whichever of its waiting calls holds the
//! reader, not on a task of its own: a call alone reads its own results as they arrive, with
//! no hand-over between tasks; with many calls in flight, the reader hands the others theirs.

use crate::AbortOnDrop;
use async_nats::{HeaderMap, Message, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use trellis_control::error_text;

/// The wRPC protocol version in every invocation subject.
pub const PROTOCOL: &str = "wrpc.0.0.1";
/// Header naming the calling component.
pub const SOURCE_ID_HEADER: &str = "source-id";
/// The W3C trace context of the caller's span (`00-{trace id}-{span id}-{flags}`), so that
/// the callee's spans join the caller's trace; absent when the caller traces nothing.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Header naming the link the call goes through.
pub const LINK_NAME_HEADER: &str = "link-name";
/// Header on the empty end-of-results message when the callee failed.
pub const ERROR_HEADER: &str = "trellis-error";
/// Header of the Trellis-to-Trellis fast path: `1` on a call whose arguments all fit in its
/// first message, and `end` on the last results message of a callee that took the fast path.
pub const FAST_PATH_HEADER: &str = "trellis-fast-path";
/// [`FAST_PATH_HEADER`] on a call: all the arguments are in this message.
const FAST_PATH_CALL: &str = "1";
/// [`FAST_PATH_HEADER`] on the last results message: the results end here.
const FAST_PATH_END: &str = "end";

/// Room left in each message for the subject, reply subject and headers.
const ENVELOPE_ROOM: usize = 1024;

/// The subject a call to `instance.function` of component `target` is published on.
pub fn invocation_subject(lattice: &str, target: &str, instance: &str, function: &str) -> String {
    format!("{lattice}.{target}.{PROTOCOL}.{instance}.{function}")
}

/// The prefix of every inbox that wRPC exchanges on `lattice` reply to (the caller's `rx`,
/// the callee's `srx`): `_INBOX_RPC.{lattice}`. Not the client's own `_INBOX.` prefix, so a
/// credential for calls alone can be allowed these subjects without reading the replies to
/// control requests and JetStream calls that go to `_INBOX.>` (see [`crate::access`]).
pub fn inbox_prefix(lattice: &str) -> String {
    format!("_INBOX_RPC.{lattice}")
}

/// A fresh inbox under [`inbox_prefix`].
fn new_inbox(lattice: &str) -> String {
    format!(
        "{}.{}",
        inbox_prefix(lattice),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether a component id can appear as one token of a NATS subject.
pub fn servable_id(id: &str) -> bool {
    !id.is_empty()
        && !id
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}

/// Why a call across the lattice failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No host serves the target component.
    #[error("no host in the lattice runs it")]
    NotRunning,
    /// No complete answer in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The callee failed and said why.
    #[error("{0}")]
    Remote(String),
    /// Arguments or results over the size limit.
    #[error("{what} of at least {size} bytes are over the limit of {limit} bytes")]
    TooLarge {
        /// `arguments` or `results`.
        what: &'static str,
        /// How many bytes had arrived.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The results ended before they were complete.
    #[error("the callee ended its results early{0}")]
    Ended(String),
    /// NATS could not carry the call.
    #[error("NATS could not carry the call")]
    Nats(#[source] async_nats::Error),
    /// NATS answered the call with an error status.
    #[error("NATS answered the call with status {code}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Status {
        /// The status.
        code: StatusCode,
        /// What NATS said about it.
        description: Option<String>,
    },
    /// The exchange broke the protocol or ended before it was done.
    #[error("{0}")]
    Protocol(&'static str),
    /// The component id cannot be one token of a NATS subject.
    #[error(
        "component id `{0}` cannot be part of a NATS subject (it has `.`, `*`, `>` or whitespace)"
    )]
    Unservable(String),
}

/// Limits on calls, the same for callers and callees of a host.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// The most bytes of encoded arguments or results a call may carry.
    pub max_size: usize,
    /// How long a caller waits for the results, and a callee for the rest of the arguments.
    pub timeout: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            max_size: 8 * 1024 * 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Who makes a call and through which link.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The target component's id.
    pub target: &'a str,
    /// `namespace:package/interface@version`.
    pub instance: &'a str,
    /// The function within it.
    pub function: &'a str,
    /// The calling component's id.
    pub source: &'a str,
    /// The link's name.
    pub link_name: &'a str,
    /// The caller's trace context (W3C `traceparent`), when it is traced.
    pub traceparent: Option<&'a str>,
}

/// A call waiting for its messages: where they go, and whether it needs the callee's
/// handshake (to send the rest of its arguments).
struct Waiting {
    tx: mpsc::UnboundedSender<(bool, Message)>,
    wants_handshake: bool,
}

/// The client's inbox: one subscription for all its calls, read by whichever waiting call
/// holds `reader`, which hands other calls' messages to them.
struct Inbox {
    /// `{inbox}.`: each call's `rx` is this followed by the call's number.
    prefix: String,
    next_call: AtomicU64,
    reader: tokio::sync::Mutex<async_nats::Subscriber>,
    waiting: Mutex<HashMap<u64, Waiting>>,
}

impl Inbox {
    /// The call a message on the inbox is for, and whether it carries results (on
    /// `rx.results`) rather than the handshake or a status (on `rx` itself).
    fn route(&self, msg: &Message) -> Option<(u64, bool)> {
        let rest = msg.subject.as_str().strip_prefix(self.prefix.as_str())?;
        let (call, results) = match rest.strip_suffix(".results") {
            Some(call) => (call, true),
            None => (rest, false),
        };
        Some((call.parse().ok()?, results))
    }

    /// Whether a call should see a message: a successful handshake matters only to a call
    /// with arguments left to send.
    fn wanted(results: bool, wants_handshake: bool, msg: &Message) -> bool {
        results || wants_handshake || msg.status.is_some_and(|code| !code.is_success())
    }

    /// The next message for call `call`: from `own` when another call read it off the
    /// subscription, or read by this call itself while it holds the reader (handing the
    /// messages of other calls to them). `None` when the subscription has ended.
    async fn next(
        &self,
        call: u64,
        wants_handshake: bool,
        own: &mut mpsc::UnboundedReceiver<(bool, Message)>,
    ) -> Option<(bool, Message)> {
        tokio::select! {
            biased;
            msg = own.recv() => msg,
            mut reader = self.reader.lock() => {
                // The previous reader may have handed this call a message before letting go.
                if let Ok(msg) = own.try_recv() {
                    return Some(msg);
                }
                loop {
                    let msg = reader.next().await?;
                    let Some((to, results)) = self.route(&msg) else {
                        continue;
                    };
                    if to == call {
                        if Self::wanted(results, wants_handshake, &msg) {
                            return Some((results, msg));
                        }
                        continue;
                    }
                    let waiting = crate::lock(&self.waiting);
                    if let Some(w) = waiting.get(&to)
                        && Self::wanted(results, w.wants_handshake, &msg)
                    {
                        let _ = w.tx.send((results, msg));
                    }
                }
            }
        }
    }
}

/// Makes calls to components on other hosts; cheap to clone, one inbox subscription for all
/// calls.
#[derive(Clone)]
pub struct WrpcClient {
    nats: async_nats::Client,
    lattice: Arc<str>,
    inbox: Arc<Inbox>,
}

/// Removes a call from the inbox's table however the call ends.
struct WaitingGuard<'a> {
    inbox: &'a Inbox,
    call: u64,
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        crate::lock(&self.inbox.waiting).remove(&self.call);
    }
}

fn transport(e: impl Into<async_nats::Error>) -> RpcError {
    RpcError::Nats(e.into())
}

fn chunk_size(nats: &async_nats::Client) -> usize {
    nats.server_info()
        .max_payload
        .saturating_sub(ENVELOPE_ROOM)
        .max(ENVELOPE_ROOM)
}

fn has_header(msg: &Message, value: &str) -> bool {
    msg.headers
        .as_ref()
        .and_then(|h| h.get(FAST_PATH_HEADER))
        .is_some_and(|v| v.as_str() == value)
}

impl WrpcClient {
    /// Subscribes to this client's inbox on `nats` (the host's RPC connection).
    pub async fn new(nats: async_nats::Client, lattice: &str) -> Result<Self, RpcError> {
        let inbox = new_inbox(lattice);
        let sub = nats
            .subscribe(format!("{inbox}.>"))
            .await
            .map_err(transport)?;
        Ok(Self {
            nats,
            lattice: lattice.into(),
            inbox: Arc::new(Inbox {
                prefix: format!("{inbox}."),
                next_call: AtomicU64::new(0),
                reader: tokio::sync::Mutex::new(sub),
                waiting: Mutex::default(),
            }),
        })
    }

    /// Calls `invocation` with the encoded `params` and returns the encoded results, reading
    /// until `complete` says they are all there (or the callee ends them).
    pub async fn invoke(
        &self,
        invocation: &Invocation<'_>,
        params: &[u8],
        complete: impl Fn(&[u8]) -> bool,
        limits: CallLimits,
    ) -> Result<Vec<u8>, RpcError> {
        if params.len() > limits.max_size {
            return Err(RpcError::TooLarge {
                what: "arguments",
                size: params.len(),
                limit: limits.max_size,
            });
        }
        let chunk = chunk_size(&self.nats);
        let whole = params.len() <= chunk;
        let call = self.inbox.next_call.fetch_add(1, Ordering::Relaxed);
        let rx = format!("{}{call}", self.inbox.prefix);
        let (tx, mut messages) = mpsc::unbounded_channel();
        crate::lock(&self.inbox.waiting).insert(
            call,
            Waiting {
                tx,
                wants_handshake: !whole,
            },
        );
        let _guard = WaitingGuard {
            inbox: &self.inbox,
            call,
        };

        let mut headers = HeaderMap::new();
        headers.insert(SOURCE_ID_HEADER, invocation.source);
        headers.insert(LINK_NAME_HEADER, invocation.link_name);
        if let Some(traceparent) = invocation.traceparent {
            headers.insert(TRACEPARENT_HEADER, traceparent);
        }
        if whole {
            // A Trellis callee may skip the handshake and the empty end message.
            headers.insert(FAST_PATH_HEADER, FAST_PATH_CALL);
        }
        let (first, mut rest) = params.split_at(params.len().min(chunk));
        let subject = invocation_subject(
            &self.lattice,
            invocation.target,
            invocation.instance,
            invocation.function,
        );
        self.nats
            .publish_with_reply_and_headers(subject, rx, headers, Bytes::copy_from_slice(first))
            .await
            .map_err(transport)?;

        let exchange = async {
            let mut results = Vec::new();
            while let Some((is_results, msg)) = self.inbox.next(call, !whole, &mut messages).await {
                if !is_results {
                    // The handshake, or NATS saying nobody serves the subject.
                    match msg.status {
                        Some(StatusCode::NO_RESPONDERS) => return Err(RpcError::NotRunning),
                        Some(code) if !code.is_success() => {
                            return Err(RpcError::Status {
                                code,
                                description: msg.description,
                            });
                        }
                        _ => {}
                    }
                    if !rest.is_empty() {
                        let Some(reply) = msg.reply else {
                            return Err(RpcError::Protocol(
                                "the callee's handshake has no reply subject",
                            ));
                        };
                        let params_subject = format!("{reply}.params");
                        while !rest.is_empty() {
                            let (next, after) = rest.split_at(rest.len().min(chunk));
                            self.nats
                                .publish(params_subject.clone(), Bytes::copy_from_slice(next))
                                .await
                                .map_err(transport)?;
                            rest = after;
                        }
                        self.nats
                            .publish(params_subject, Bytes::new())
                            .await
                            .map_err(transport)?;
                    }
                    continue;
                }
                if let Some(error) = msg.headers.as_ref().and_then(|h| h.get(ERROR_HEADER)) {
                    return Err(RpcError::Remote(error.to_string()));
                }
                // The last results message of a Trellis callee on the fast path ends them
                // too; otherwise an empty message does.
                let end = msg.payload.is_empty() || has_header(&msg, FAST_PATH_END);
                results.extend_from_slice(&msg.payload);
                if results.len() > limits.max_size {
                    return Err(RpcError::TooLarge {
                        what: "results",
                        size: results.len(),
                        limit: limits.max_size,
                    });
                }
                if end {
                    return if complete(&results) {
                        Ok(results)
                    } else if results.is_empty() {
                        Err(RpcError::Ended(
                            " without any result (it may have trapped)".into(),
                        ))
                    } else {
                        Err(RpcError::Ended(format!(" after {} bytes", results.len())))
                    };
                }
                if complete(&results) {
                    return Ok(results);
                }
            }
            Err(RpcError::Protocol("the inbox subscription ended"))
        };
        tokio::time::timeout(limits.timeout, exchange)
            .await
            .map_err(|_| RpcError::Timeout(limits.timeout))?
    }
}

/// One call that reached a host, with all its arguments.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// `namespace:package/interface@version`.
    pub instance: String,
    /// The function within it.
    pub function: String,
    /// The encoded arguments.
    pub params: Vec<u8>,
    /// The caller, from the `source-id` header.
    pub source: Option<String>,
    /// The caller's trace context, from the `traceparent` header.
    pub traceparent: Option<String>,
}

/// Why a [`WrpcHandler`] could not serve a call. The caller receives its text and its causes
/// (in the `trellis-error` header), so each variant shows the handler's error as it is.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The call cannot be served as asked: unknown interface or function, malformed
    /// arguments.
    #[error(transparent)]
    Refused(Box<dyn std::error::Error + Send + Sync>),
    /// The call was taken and failed: the component was busy, trapped or ran out of time.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// What serves the calls to one component on this host.
pub trait WrpcHandler: Send + Sync + 'static {
    /// Whether `bytes` hold all the arguments of `instance.function`; an error when the call
    /// cannot be served (unknown function, malformed arguments).
    fn params_complete(
        &self,
        instance: &str,
        function: &str,
        bytes: &[u8],
    ) -> Result<bool, HandlerError>;
    /// Runs the call and returns the encoded results, or why it failed.
    fn call(&self, call: Incoming) -> BoxFuture<'static, Result<Vec<u8>, HandlerError>>;
}

/// Why this host did not answer a call with results; the caller gets its text.
#[derive(Debug, thiserror::Error)]
enum AnswerError {
    #[error("`{0}` names no function")]
    NoFunction(String),
    #[error("arguments of at least {size} bytes are over the limit of {limit} bytes")]
    ArgumentsTooLarge { size: usize, limit: usize },
    #[error("results of {size} bytes are over the limit of {limit} bytes")]
    ResultsTooLarge { size: usize, limit: usize },
    #[error("NATS failed while the call was being answered")]
    Nats(#[source] async_nats::Error),
    #[error("the arguments' subscription ended")]
    ArgumentsEnded,
    #[error("the caller ended its arguments early, after {0} bytes")]
    ArgumentsEndedEarly(usize),
    #[error("the rest of the arguments did not come within {0:?}")]
    ArgumentsTimedOut(Duration),
    #[error(transparent)]
    Handler(#[from] HandlerError),
}

/// Serving one component's exports on the lattice; stops (unsubscribes) when dropped.
pub struct Serving {
    _task: AbortOnDrop,
}

/// Starts answering calls to component `id` on `nats`, in the queue group all hosts running
/// the component share.
pub async fn serve(
    nats: async_nats::Client,
    lattice: &str,
    id: &str,
    handler: Arc<dyn WrpcHandler>,
    limits: CallLimits,
) -> Result<Serving, RpcError> {
    if !servable_id(id) {
        return Err(RpcError::Unservable(id.to_owned()));
    }
    let prefix = format!("{lattice}.{id}.{PROTOCOL}.");
    let lattice: Arc<str> = lattice.into();
    let mut sub = nats
        .queue_subscribe(format!("{prefix}>"), format!("{lattice}.{id}"))
        .await
        .map_err(transport)?;
    nats.flush().await.map_err(transport)?;
    let task = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let nats = nats.clone();
            let handler = handler.clone();
            let prefix = prefix.clone();
            let lattice = lattice.clone();
            tokio::spawn(async move {
                let Some(reply) = msg.reply.clone() else {
                    tracing::debug!(subject = %msg.subject, "call without a reply subject ignored");
                    return;
                };
                let results = format!("{reply}.results");
                let reply = reply.to_string();
                let fast = has_header(&msg, FAST_PATH_CALL);
                let outcome =
                    answer(&nats, &lattice, &prefix, reply, msg, fast, handler, limits).await;
                let sent = match outcome {
                    Ok(bytes) => send_results(&nats, &results, bytes, fast).await,
                    Err(e) => {
                        let reason = error_text(&e);
                        tracing::debug!(%reason, "call failed");
                        let mut headers = HeaderMap::new();
                        let reason: String = reason
                            .chars()
                            .map(|c| if c.is_control() { ' ' } else { c })
                            .take(4096)
                            .collect();
                        headers.insert(ERROR_HEADER, reason.as_str());
                        nats.publish_with_headers(results, headers, Bytes::new())
                            .await
                            .map_err(transport)
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %error_text(&e), "cannot send a call's results");
                }
            });
        }
    });
    Ok(Serving {
        _task: AbortOnDrop(task),
    })
}

/// Handshakes, gathers the arguments and runs the call. On the fast path (`fast`: a Trellis
/// caller sent all the arguments in `msg`) there is no handshake: the caller waits for none.
#[allow(clippy::too_many_arguments)]
async fn answer(
    nats: &async_nats::Client,
    lattice: &str,
    prefix: &str,
    reply: String,
    msg: Message,
    fast: bool,
    handler: Arc<dyn WrpcHandler>,
    limits: CallLimits,
) -> Result<Vec<u8>, AnswerError> {
    let source = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(SOURCE_ID_HEADER))
        .map(|v| v.to_string());
    let traceparent = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(TRACEPARENT_HEADER))
        .map(|v| v.to_string());
    let path = msg
        .subject
        .as_str()
        .strip_prefix(prefix)
        .unwrap_or_default();
    let Some((instance, function)) = path.rsplit_once('.') else {
        return Err(AnswerError::NoFunction(msg.subject.to_string()));
    };
    let mut params = msg.payload.to_vec();
    if params.len() > limits.max_size {
        return Err(AnswerError::ArgumentsTooLarge {
            size: params.len(),
            limit: limits.max_size,
        });
    }
    let complete = handler.params_complete(instance, function, &params)?;
    if fast {
        if !complete {
            return Err(AnswerError::ArgumentsEndedEarly(params.len()));
        }
    } else {
        gather(
            nats,
            lattice,
            reply,
            instance,
            function,
            &mut params,
            complete,
            &*handler,
            limits,
        )
        .await?;
    }
    let results = handler
        .call(Incoming {
            instance: instance.to_owned(),
            function: function.to_owned(),
            params,
            source,
            traceparent,
        })
        .await?;
    if results.len() > limits.max_size {
        return Err(AnswerError::ResultsTooLarge {
            size: results.len(),
            limit: limits.max_size,
        });
    }
    Ok(results)
}

/// The standard wRPC exchange: answers the call's `reply` with the handshake and, unless the
/// arguments are `complete`, reads the rest of them from the caller.
#[allow(clippy::too_many_arguments)]
async fn gather(
    nats: &async_nats::Client,
    lattice: &str,
    reply: String,
    instance: &str,
    function: &str,
    params: &mut Vec<u8>,
    complete: bool,
    handler: &dyn WrpcHandler,
    limits: CallLimits,
) -> Result<(), AnswerError> {
    let srx = new_inbox(lattice);
    let mut more = if complete {
        None
    } else {
        Some(
            nats.subscribe(format!("{srx}.params"))
                .await
                .map_err(|e| AnswerError::Nats(e.into()))?,
        )
    };
    nats.publish_with_reply(reply, srx, Bytes::new())
        .await
        .map_err(|e| AnswerError::Nats(e.into()))?;
    let Some(sub) = more.as_mut() else {
        return Ok(());
    };
    let gather = async {
        loop {
            let Some(chunk) = sub.next().await else {
                return Err(AnswerError::ArgumentsEnded);
            };
            if chunk.payload.is_empty() {
                return Err(AnswerError::ArgumentsEndedEarly(params.len()));
            }
            params.extend_from_slice(&chunk.payload);
            if params.len() > limits.max_size {
                return Err(AnswerError::ArgumentsTooLarge {
                    size: params.len(),
                    limit: limits.max_size,
                });
            }
            if handler.params_complete(instance, function, params)? {
                return Ok(());
            }
        }
    };
    tokio::time::timeout(limits.timeout, gather)
        .await
        .map_err(|_| AnswerError::ArgumentsTimedOut(limits.timeout))?
}

/// Sends the results in as many messages as they need, then, on the standard path, an
/// empty message to end them; on the fast path the last results message (an empty one when
/// there are no result bytes) carries the end instead, in [`FAST_PATH_HEADER`].
async fn send_results(
    nats: &async_nats::Client,
    subject: &str,
    results: Vec<u8>,
    fast: bool,
) -> Result<(), RpcError> {
    let chunk = chunk_size(nats);
    if fast && results.len() <= chunk {
        // The common case: one message, and no copy of the results.
        let mut headers = HeaderMap::new();
        headers.insert(FAST_PATH_HEADER, FAST_PATH_END);
        return nats
            .publish_with_headers(subject.to_owned(), headers, results.into())
            .await
            .map_err(transport);
    }
    let mut rest = results.as_slice();
    loop {
        let (next, after) = rest.split_at(rest.len().min(chunk));
        rest = after;
        let payload = Bytes::copy_from_slice(next);
        if fast && rest.is_empty() {
            let mut headers = HeaderMap::new();
            headers.insert(FAST_PATH_HEADER, FAST_PATH_END);
            return nats
                .publish_with_headers(subject.to_owned(), headers, payload)
                .await
                .map_err(transport);
        }
        if !next.is_empty() {
            nats.publish(subject.to_owned(), payload)
                .await
                .map_err(transport)?;
        }
        if rest.is_empty() {
            return nats
                .publish(subject.to_owned(), Bytes::new())
                .await
                .map_err(transport);
        }
    }
}
