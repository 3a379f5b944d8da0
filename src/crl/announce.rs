//! The publication event: the one place where a CRL becomes current
//! ([`super::Publisher`]'s `persist_and_swap`) announces it to every subscriber — HTTP serving
//! ([`crate::http::crl::Served`]) and the publication sinks ([`crate::publish`]).
//!
//! An announcement is the [`PublishedCrl`] itself: CA, kind, number, thisUpdate, nextUpdate
//! (its [`super::CrlRecord`]) and the DER bytes. It is made after the CRL is durable (and, for
//! sinks, queued in the same batch), while the CA's current CRLs are locked, so every
//! subscriber sees the CRLs of a CA in the order they became current.
//!
//! Subscribers are called on the building thread: they must return at once (swap a pointer,
//! wake a task) and never wait for I/O — a slow LDAP server must never delay CRL building
//! (a well-known CA product once blocked CRL creation for 15 minutes on one). Work that can be
//! slow goes to a task that the announcement only wakes.

use std::sync::Arc;

use super::PublishedCrl;

/// Something told of every CRL that becomes current.
pub trait Subscriber: Send + Sync {
    /// `crl` is now current for its CA and kind. Must not block.
    fn announce(&self, crl: &Arc<PublishedCrl>);
}
