//! What every capability interface crate (`trellis-keyvalue`, `trellis-messaging`,
//! `trellis-blobstore`) shares, written once: the error a backend's health check answers
//! with, and the lock helper for their in-memory state. No wasmtime, no I/O.
//!
//! ```
//! use trellis_provider::HealthError;
//! #[derive(Debug, thiserror::Error)]
//! #[error("the bucket is gone")]
//! struct Gone;
//! let e: HealthError<Gone> = HealthError::caused_by("redis is unreachable", std::io::Error::other("refused"));
//! assert_eq!(e.to_string(), "redis is unreachable");
//! let e: HealthError<Gone> = Gone.into();
//! assert_eq!(e.to_string(), "the bucket is gone");
//! ```

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Why a backend's health check failed. `E` is the capability's own error, what a guest
/// would have seen from the call the check made.
#[derive(Debug, thiserror::Error)]
pub enum HealthError<E> {
    /// A call the check made failed, with the error a guest would have seen.
    #[error(transparent)]
    Call(#[from] E),
    /// The backend found itself unusable: the message says why, the source (if any) what
    /// failed underneath.
    #[error("{message}")]
    Unhealthy {
        /// What is wrong, and where it can, what to do.
        message: String,
        /// The failure underneath, if there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl<E> HealthError<E> {
    /// An [`HealthError::Unhealthy`] with no underlying failure.
    pub fn unhealthy(message: impl Into<String>) -> Self {
        HealthError::Unhealthy {
            message: message.into(),
            source: None,
        }
    }

    /// An [`HealthError::Unhealthy`] caused by `source`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        HealthError::Unhealthy {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// Locks `mutex`, taking it over from a holder that panicked: the in-memory backends change
/// their state one whole operation at a time, so it is consistent whatever happened.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
