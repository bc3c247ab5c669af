//! A `clickhouse-server` of its own for a test: fresh ports, a config and
//! data directory in a temporary directory, started as the current user and
//! waited for until `/ping` answers; killed when dropped. `.ci/run` installs
//! Debian's `clickhouse-server` (18.16); `CLICKHOUSE_SERVER` overrides the
//! binary's path.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// ClickHouse 18.16 starts in about a second here; leave room for a busy CI.
const START_WAIT: Duration = Duration::from_secs(60);

pub struct ClickHouseServer {
    child: Child,
    pub http_port: u16,
    pub tcp_port: u16,
    dir: TempDir,
}

fn server_binary() -> PathBuf {
    std::env::var_os("CLICKHOUSE_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/clickhouse-server"))
}

/// A port free right now (the server binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl ClickHouseServer {
    /// Starts a server on fresh ports.
    pub async fn start() -> Self {
        Self::start_on(free_port(), free_port(), "").await
    }

    /// Two servers, each knowing both as the shards of cluster `otelite`
    /// (in `remote_servers`), for Distributed tables.
    pub async fn start_two_shards() -> (Self, Self) {
        let ports = [(free_port(), free_port()), (free_port(), free_port())];
        let shard = |tcp: u16| {
            format!("<shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>")
        };
        let cluster = format!(
            "<otelite>{}{}</otelite>",
            shard(ports[0].1),
            shard(ports[1].1)
        );
        let first = Self::start_on(ports[0].0, ports[0].1, &cluster).await;
        let second = Self::start_on(ports[1].0, ports[1].1, &cluster).await;
        (first, second)
    }

    /// Starts a server; `remote_servers` is XML put inside
    /// `<remote_servers>` (a cluster for Distributed tables), or empty.
    async fn start_on(http_port: u16, tcp_port: u16, remote_servers: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for ClickHouse");
        let root = dir.path().display().to_string();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{root}/server.log</log><errorlog>{root}/error.log</errorlog></logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{root}/data/</path>
    <tmp_path>{root}/tmp/</tmp_path>
    <user_files_path>{root}/user_files/</user_files_path>
    <format_schema_path>{root}/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>67108864</mark_cache_size>
    <timezone>UTC</timezone>
    <remote_servers>{remote_servers}</remote_servers>
</yandex>
"#
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default></default></quotas>
</yandex>
"#;
        std::fs::write(dir.path().join("config.xml"), config).expect("write config.xml");
        std::fs::write(dir.path().join("users.xml"), users).expect("write users.xml");
        let child = Command::new(server_binary())
            .arg(format!("--config-file={root}/config.xml"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} ({e}): install clickhouse-server as .ci/run does",
                    server_binary().display()
                )
            });
        let mut server = Self {
            child,
            http_port,
            tcp_port,
            dir,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_WAIT;
        loop {
            let ping = http.get(self.url("/ping")).send().await;
            if ping.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("clickhouse-server exited ({status}):\n{}", self.errors());
            }
            assert!(
                Instant::now() < deadline,
                "clickhouse-server did not answer within {START_WAIT:?}:\n{}",
                self.errors()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's HTTP interface plus `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// What `--clickhouse-url` takes for this server and `database`.
    pub fn otelite_url(&self, database: &str) -> String {
        self.url(&format!("/{database}"))
    }

    /// Runs a statement and returns its text output (TSV).
    pub async fn sql(&self, statement: &str) -> String {
        let reply = reqwest::Client::new()
            .post(self.url("/"))
            .body(statement.to_owned())
            .send()
            .await
            .expect("POST reaches ClickHouse");
        let status = reply.status();
        let text = reply.text().await.expect("ClickHouse reply");
        assert!(status.is_success(), "{statement}: {status} {text}");
        text
    }

    fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

/// An in-process otelite on `--store clickhouse`, on a server of its own
/// (keep the server as long as the backend).
pub async fn backend(database: &str) -> (ClickHouseServer, super::Backend) {
    let server = ClickHouseServer::start().await;
    let url = server.otelite_url(database);
    let backend = super::Backend::start_with(|config| {
        config.store = otelite_backend::StoreKind::Clickhouse;
        config.clickhouse_url = url;
    })
    .await;
    (server, backend)
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
