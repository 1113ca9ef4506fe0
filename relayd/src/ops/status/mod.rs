//! The status page and its JSON API on the operations listener: `/` (the sessions table),
//! `/sessions/ID` (one session), `/api/v1/status`, `/api/v1/sessions`, `/api/v1/sessions/ID`
//! (schema: [`trelay_proto::status`], `docs/status-api.md`).
//!
//! Cheap by construction: ingest only bumps the atomics of [`crate::telemetry::SessionCounters`];
//! a [`sampler`] task reads them once a second into the [`Book`] (the last five minutes of rates,
//! and the notable events it sees change), and a request reads the book and copies a few
//! counters per session and stream under their own short locks. Nothing here is on the data
//! path, and no lock is held across I/O.
//!
//! - [`book`]: what the sampler keeps (rates, events, attached viewers).
//! - [`sampler`]: the once-a-second task.
//! - [`read`]: the JSON documents, built from the registry and the book.
//! - [`page`]: the HTML, rendered on the server (readable without JavaScript) and refreshed by
//!   `status.js` from the API.
//! - [`routes`]: the axum routes.

pub mod book;
pub mod page;
pub mod read;
pub mod routes;
pub mod sampler;
pub mod session_page;

pub use book::{Book, ViewerRegistration};
