//! A redis-server of a test's own (no persistence, as the platform's cache runs), which
//! the test can kill and start again empty.

use std::time::{Duration, Instant};

use super::{ChildGuard, free_port, scratch};

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
        self.child = Some(super::run_stack_server(
            "redis",
            self.port,
            &self.dir,
            &self.dir,
            &[],
        ));
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
