//! Locking the runtime's few mutexes.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex` even if a thread panicked while holding it. Every mutex in the runtime guards
/// data that is whole after each statement (a map of compiled components, a guest's write
/// buffer), so a panic elsewhere must not take the lock, and with it every later request,
/// down too.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
