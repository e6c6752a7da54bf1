//! Fresh PostgreSQL databases for tests and benchmarks, made and dropped with `psql`.
//!
//! The server is `WAVEGATE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The PostgreSQL server's URL, without a database.
pub fn server() -> String {
    std::env::var("WAVEGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Runs one statement against the `postgres` database; what `psql` said on failure.
pub fn psql(sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .args(["-d", &format!("{}/postgres", server()), "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .map_err(|e| format!("run psql (PostgreSQL's client): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// An empty database of its own, dropped (with its connections) with the guard.
#[derive(Debug)]
pub struct Database(String);

impl Database {
    /// Creates `<prefix>_<pid>_<millis>_<n>`.
    pub fn create(prefix: &str) -> Result<Database, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis();
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}_{}_{millis}_{n}", std::process::id());
        psql(&format!("CREATE DATABASE {name}"))?;
        Ok(Database(name))
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("{}/{}", server(), self.0)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}
