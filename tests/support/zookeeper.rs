//! A ZooKeeper of its own for a test (Debian's `zookeeper` package, which
//! `scripts/test.sh` installs): standalone, on a fresh loopback port, its
//! data in a temporary directory; killed when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const START_WAIT: Duration = Duration::from_secs(60);
/// Longest one `ruok` is waited for.
const PROBE_WAIT: Duration = Duration::from_secs(2);
const CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar";

pub struct ZooKeeper {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl ZooKeeper {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for ZooKeeper");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let config = dir.path().join("zoo.cfg");
        std::fs::write(
            &config,
            format!(
                "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=ruok\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write zoo.cfg");
        let child = Command::new("java")
            .args([
                "-cp",
                CLASSPATH,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start java for ZooKeeper");
        let mut zookeeper = Self {
            child,
            port,
            _dir: dir,
        };
        zookeeper.wait_ready().await;
        zookeeper
    }

    /// Until `ruok` is answered `imok`.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_WAIT;
        loop {
            // A ZooKeeper still starting can accept a connection and never
            // answer it: each try is bounded.
            let answer = tokio::time::timeout(PROBE_WAIT, ask(self.port, b"ruok")).await;
            if matches!(answer, Ok(Some(ref text)) if text == "imok") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ZooKeeper exited ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not start in {START_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a four-letter word; the whole answer, if the connection takes it.
async fn ask(port: u16, word: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream.write_all(word).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    Some(answer)
}
