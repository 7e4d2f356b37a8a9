//! PostgreSQL for the server tests: fresh databases on the shared test cluster of
//! `cargo xtask test`, and private clusters that a test may stop and start.

use std::path::PathBuf;
use std::process::Command;

use sqlx::Connection;

fn shared_url() -> String {
    std::env::var("FAULTLINE_TEST_DATABASE_URL").expect(
        "FAULTLINE_TEST_DATABASE_URL is not set: `cargo xtask test` starts a throwaway \
         PostgreSQL and sets it (with FAULTLINE_TEST_PG_BIN)",
    )
}

/// A new empty database on `base` (a superuser URL); returns its URL.
pub async fn fresh_db_on(base: &str) -> String {
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

/// A new empty database on the shared test cluster.
pub async fn fresh_db() -> String {
    fresh_db_on(&shared_url()).await
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A cluster of the test's own, so it can be stopped and started.
pub struct PrivatePg {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

impl PrivatePg {
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    pub fn start() -> PrivatePg {
        let bin = PathBuf::from(std::env::var("FAULTLINE_TEST_PG_BIN").expect(
            "FAULTLINE_TEST_PG_BIN is not set: `cargo xtask test` sets it to PostgreSQL's bin dir",
        ));
        let dir = std::env::temp_dir().join(format!(
            "faultline-private-pg-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let uid = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .unwrap();
            let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
            std::os::unix::fs::chown(&dir, Some(uid), None).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PrivatePg { bin, dir, port };
        let out = pg
            .tool("initdb")
            .arg("-D")
            .arg(pg.dir.join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.up();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) cluster and waits until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops it the way an outage looks to clients: connections cut, new ones refused.
    pub fn down(&self) {
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How many times each id appears in `system_logs`.
pub async fn stored_ids(url: &str) -> std::collections::HashMap<String, i64> {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT id::text, count(*) FROM system_logs GROUP BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
    rows.into_iter().collect()
}
