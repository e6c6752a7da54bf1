//! Background runtimes: the controller's tick loop (on the leading replica), the change feed
//! that tails the audit log for every live view, and the notifier that delivers webhooks.
//! Each is a task started by the server; none holds a lock across network I/O.

pub mod audit;
pub mod checkpoint;
pub mod controller;
pub mod feed;
pub mod notify;
