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

/// A throwaway PostgreSQL cluster of the test's own (initdb, as the `postgres` user since
/// initdb refuses root) on a free port with trust auth, so a test may stop, restart or
/// reconfigure it without touching the shared server others use. Stopped and removed when
/// dropped.
#[derive(Debug)]
pub struct Cluster {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Cluster {
    /// Makes and starts a cluster.
    pub fn start() -> Result<Cluster, String> {
        Cluster::make(false)
    }

    /// Makes and starts a cluster that takes TLS connections only, with a certificate for
    /// `localhost` signed by a CA of its own ([`Cluster::ca`]); plaintext connections are refused.
    pub fn start_tls() -> Result<Cluster, String> {
        Cluster::make(true)
    }

    /// The CA certificate that signed a TLS cluster's certificate (for `sslrootcert`).
    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.join("ca.crt")
    }

    fn make(tls: bool) -> Result<Cluster, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("PostgreSQL's server binaries (/usr/lib/postgresql): {e}"))?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .ok_or("no initdb under /usr/lib/postgresql/*/bin")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir = std::env::temp_dir().join(format!("wavegate-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let c = Cluster { dir, bin, port };
        run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(&c.dir))?;
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(c.bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(c.dir.join("data")))?;
        if tls {
            c.make_certificates()?;
        }
        c.pg_ctl_start()?;
        Ok(c)
    }

    /// A CA, a server certificate for `localhost` it signs, TLS on and plaintext refused.
    fn make_certificates(&self) -> Result<(), String> {
        let d = &self.dir;
        let data = d.join("data");
        let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(d).args(args));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=wavegate test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ])?;
        std::fs::write(d.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
            .map_err(|e| e.to_string())?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ])?;
        for f in ["server.crt", "server.key"] {
            std::fs::copy(d.join(f), data.join(f)).map_err(|e| e.to_string())?;
        }
        let mut conf =
            std::fs::read_to_string(data.join("postgresql.conf")).map_err(|e| e.to_string())?;
        conf.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(data.join("postgresql.conf"), conf).map_err(|e| e.to_string())?;
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n";
        std::fs::write(data.join("pg_hba.conf"), hba).map_err(|e| e.to_string())?;
        run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(d))?;
        run(Command::new("chmod").arg("600").arg(data.join("server.key")))
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts it again after [`Cluster::stop`] and waits until it takes connections.
    pub fn pg_ctl_start(&self) -> Result<(), String> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-w", "-s", "-o", &opts, "-l"])
            .arg(self.dir.join("log"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("start"))
    }

    /// Stops it at once (`-m immediate`: connections are cut as in a crash).
    pub fn stop(&self) -> Result<(), String> {
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-w", "-s", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
