//! Interop tests for calls between hosts: Trellis's wRPC transport
//! (`trellis_lattice::wrpc`) against plain wRPC peers built on the published
//! `wrpc-transport-nats` crate, which is what wasmCloud v1 hosts and providers speak.
//!
//! The tests in `tests/` check both directions, with small arguments and with arguments and
//! results larger than one NATS message:
//!
//! - a plain wRPC client calls a Trellis callee, in process and as a component on a real
//!   `trellis host` (it gets the standard exchange: handshake, results, empty end message);
//! - a Trellis client, which offers the Trellis-to-Trellis fast path in a header, calls a
//!   plain wRPC server (which ignores the header and answers the standard way).
//!
//! They need `nats-server` on the PATH (each test starts its own). The published crates pin
//! async-nats 0.49, a second version beside the workspace's, in this test-only crate alone.
