//! Delivering changes to watched keys to components that export
//! `wasi:keyvalue/watcher@0.2.0-draft`: a fresh instance per change, under the same limits as
//! an HTTP request, from a [`WatcherComponent`] prepared once
//! ([`crate::Runtime::prepare_watcher`]).
//!
//! The `bucket` the guest receives is the one that changed, opened on the watching backend:
//! the guest may read it (for example `get` the key again) whatever link its own calls go
//! through.

use crate::capabilities::keyvalue::BucketHandle;
use crate::capabilities::keyvalue::watcher_bindings::WatcherPre;
use crate::invoke::{GuestFailure, InvokeError, spawn_with_deadline};
use crate::state::{InstanceBounds, InstanceContext, InstanceState};
use std::sync::Arc;
use trellis_control::ComponentId;
use trellis_keyvalue::Bucket;
use trellis_keyvalue::watch::Change;

/// A component prepared once to hear of changes to watched keys; cheap to clone and share.
#[derive(Clone)]
pub struct WatcherComponent {
    pre: WatcherPre<InstanceState>,
    context: InstanceContext,
    bounds: InstanceBounds,
}

impl WatcherComponent {
    pub(crate) fn new(
        pre: WatcherPre<InstanceState>,
        context: InstanceContext,
        bounds: InstanceBounds,
    ) -> Self {
        Self {
            pre,
            context,
            bounds,
        }
    }

    /// The id of the component this serves.
    pub fn id(&self) -> &ComponentId {
        &self.context.component_id
    }

    /// Calls `on-set` or `on-delete` for `change` in a fresh instance, handing it `bucket`
    /// (the bucket that changed), and waits for the guest to return.
    pub async fn deliver(
        &self,
        bucket: Arc<dyn Bucket>,
        change: Change,
    ) -> Result<(), InvokeError> {
        let id = self.context.component_id.clone();
        let limit = self.bounds.max_execution_time;
        let mut store = self
            .bounds
            .new_store(self.pre.engine(), self.context.clone());
        let pre = self.pre.clone();
        let run = async move {
            let guest = pre
                .instantiate_async(&mut store)
                .await
                .map_err(GuestFailure::Instantiate)?;
            let handle = BucketHandle::fixed(change.bucket().to_owned(), bucket);
            let resource = store
                .data_mut()
                .table
                .push(handle)
                .map_err(|e| GuestFailure::Call(e.into()))?;
            let watcher = guest.wasi_keyvalue_watcher();
            match &change {
                Change::Set { key, value, .. } => {
                    watcher.call_on_set(&mut store, resource, key, value).await
                }
                Change::Delete { key, .. } => {
                    watcher.call_on_delete(&mut store, resource, key).await
                }
            }
            .map_err(GuestFailure::Call)
        };
        match spawn_with_deadline(id.clone(), limit, run).await {
            Ok(outcome) => outcome,
            Err(join) => Err(InvokeError::host_task_failed(id, join)),
        }
    }
}
