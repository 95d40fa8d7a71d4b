//! A redis-server of a test's own (no persistence, as the platform's cache runs), which
//! the test can kill and start again empty.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{ChildGuard, free_port, root, scratch};

pub struct Redis {
    child: Option<ChildGuard>,
    port: u16,
    dir: std::path::PathBuf,
    pub url: String,
}

impl Redis {
    pub async fn start(test: &str) -> Redis {
        let dir = scratch(&format!("{test}-redis"));
        let port = free_port();
        let mut redis = Redis {
            child: None,
            port,
            dir,
            url: format!("redis://127.0.0.1:{port}"),
        };
        redis.restart().await;
        redis
    }

    /// Kill the server (SIGKILL): everything it held is gone.
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Start it (again) on the same port, empty; returns once it accepts connections.
    pub async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .expect("redis log");
        let child = Command::new(root().join("scripts/stack"))
            .arg("run-redis")
            .arg(self.port.to_string())
            .arg(&self.dir)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("scripts/stack run-redis");
        self.child = Some(ChildGuard(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
