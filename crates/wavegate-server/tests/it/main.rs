//! Server integration tests: the real router over a real SQLite file, driven without a socket.

mod admin;
mod ofrep;
mod rollouts;
mod support;
