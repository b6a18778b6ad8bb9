//! Integration tests: real sockets, a real OIDC provider (oidc-provider on Node), real keys,
//! and the real binaries. See tests/it/support for the guards that start and stop them.

mod support;

mod architecture;
mod bound;
mod corpus;
mod differential;
mod docs;
mod faults;
mod flush;
mod invoke;
mod jwks;
mod lambda;
mod leaks;
mod local_mode;
mod mapping_cache;
mod model;
mod oidc;
mod replay;
mod routes;
mod store;
mod template;
