//! Verification sessions' background work (issue 5): the
//! [`processor::Processor`] that decides confirmed sessions, and the
//! [`webhook`] sender. Both poll the database, so a restarted server picks
//! up where the last one stopped.

pub mod processor;
pub mod webhook;
