//! A PostgreSQL cluster of a test's own (`scripts/stack run-postgres`), which the test can
//! crash (immediate shutdown: no checkpoint, recovery from the WAL at the next start) and
//! start again. Durability on, as everywhere.

use std::time::{Duration, Instant};

use super::{ChildGuard, free_port, scratch};

pub struct Postgres {
    child: Option<ChildGuard>,
    port: u16,
    dir: std::path::PathBuf,
    pub url: String,
}

impl Postgres {
    pub async fn start(test: &str) -> Postgres {
        let dir = scratch(&format!("{test}-pg"));
        let port = free_port();
        let mut pg = Postgres {
            child: None,
            port,
            dir,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"),
        };
        pg.restart().await;
        pg
    }

    /// Crash it: SIGQUIT, PostgreSQL's immediate shutdown (backends end at once, nothing
    /// is flushed; the next start recovers from the WAL).
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            assert!(
                child.signal("QUIT", Duration::from_secs(20)).is_some(),
                "postgres did not stop on SIGQUIT"
            );
        }
    }

    /// Start it (again) on the same port and data; returns once it accepts queries.
    pub async fn restart(&mut self) {
        self.child = Some(super::run_stack_server(
            "postgres",
            self.port,
            &self.dir,
            &self.dir,
            &[],
        ));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((client, connection)) =
                tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await
            {
                tokio::spawn(connection);
                if client.simple_query("SELECT 1").await.is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "postgres did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.crash();
    }
}
