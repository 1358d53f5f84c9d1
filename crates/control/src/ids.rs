//! Identifier newtypes.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_type!(
    /// The id of a component in the lattice, for example `rust_hello_world-http_component`.
    ComponentId
);
id_type!(
    /// The id of a capability provider in the lattice.
    ProviderId
);
id_type!(
    /// The id of a host.
    HostId
);
id_type!(
    /// The name of a link; `default` unless the manifest names it.
    LinkName
);
id_type!(
    /// The id at either end of a link: a component's or a provider's (the control
    /// interface does not say which; the host finds out by looking it up).
    WorkloadId
);

impl From<ComponentId> for WorkloadId {
    fn from(id: ComponentId) -> Self {
        Self(id.0)
    }
}

impl From<ProviderId> for WorkloadId {
    fn from(id: ProviderId) -> Self {
        Self(id.0)
    }
}

impl PartialEq<ComponentId> for WorkloadId {
    fn eq(&self, other: &ComponentId) -> bool {
        self.0 == other.0
    }
}

impl PartialEq<ProviderId> for WorkloadId {
    fn eq(&self, other: &ProviderId) -> bool {
        self.0 == other.0
    }
}

impl PartialEq<str> for WorkloadId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl Default for ComponentId {
    /// An empty id: a request body that leaves it out (auctions).
    fn default() -> Self {
        Self(String::new())
    }
}

impl Default for ProviderId {
    /// An empty id: a request body that leaves it out (auctions).
    fn default() -> Self {
        Self(String::new())
    }
}

impl Default for LinkName {
    fn default() -> Self {
        Self("default".to_owned())
    }
}

impl Default for HostId {
    /// An empty id: a request body that leaves the host out gets it from the subject.
    fn default() -> Self {
        Self(String::new())
    }
}

impl PartialEq<&str> for WorkloadId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
