//! A `clickhouse-server` of its own for a test: fresh ports, a config and
//! data directory in a temporary directory, started as the current user and
//! waited for until `/ping` answers; killed when dropped. `.ci/run` installs
//! Debian's `clickhouse-server` (18.16); `CLICKHOUSE_SERVER` overrides the
//! binary's path.
//!
//! Tests that need no server of their own share one ([`shared`]), each in a
//! database of its own ([`database`]): a start costs about a second. The
//! server runs under a small `sh` that kills it when its stdin (a pipe from
//! this process) closes, so a shared server never outlives the test binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::OnceCell;

/// ClickHouse 18.16 starts in about a second here; leave room for a busy CI.
const START_WAIT: Duration = Duration::from_secs(60);

pub struct ClickHouseServer {
    child: Child,
    /// The watchdog's stdin: closing it kills the server.
    lifeline: Option<ChildStdin>,
    pub http_port: u16,
    pub tcp_port: u16,
    dir: TempDir,
}

fn server_binary() -> PathBuf {
    std::env::var_os("CLICKHOUSE_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/clickhouse-server"))
}

/// A loopback port free right now (the server binds it a moment later),
/// below Linux's ephemeral range (32768 and up), so that no outgoing
/// connection or `bind(0)` of another test takes it while a stopped server
/// is down: [`ClickHouseServer::start_again`] needs its ports back.
fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Another process (a second test binary) starts elsewhere in the range.
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..COUNT {
        let offset = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT;
        let port = u16::try_from(FIRST + offset).expect("ports below 32000");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + COUNT)
}

impl ClickHouseServer {
    /// Starts a server on fresh ports.
    pub async fn start() -> Self {
        Self::start_on(free_port(), free_port(), "", "").await
    }

    /// Starts replica `replica` of shard `01`, its replicated tables kept in
    /// the ZooKeeper on `zookeeper_port`. A replica that died counts as
    /// gone once its ZooKeeper session ends, after 5 s, so quorum inserts
    /// fail fast rather than wait for it; shorter, and a busy CI's pauses
    /// could end a live replica's session.
    pub async fn start_replica(zookeeper_port: u16, replica: &str) -> Self {
        let extra = format!(
            "<zookeeper><node><host>127.0.0.1</host><port>{zookeeper_port}</port></node>\
             <session_timeout_ms>5000</session_timeout_ms></zookeeper>\
             <macros><shard>01</shard><replica>{replica}</replica></macros>\
             <interserver_http_host>127.0.0.1</interserver_http_host>\
             <interserver_http_port>{}</interserver_http_port>",
            free_port()
        );
        Self::start_on(free_port(), free_port(), "", &extra).await
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
        let first = Self::start_on(ports[0].0, ports[0].1, &cluster, "").await;
        let second = Self::start_on(ports[1].0, ports[1].1, &cluster, "").await;
        (first, second)
    }

    /// Starts a server; `remote_servers` is XML put inside
    /// `<remote_servers>` (a cluster for Distributed tables), or empty;
    /// `extra` is more XML for the config's top level.
    async fn start_on(http_port: u16, tcp_port: u16, remote_servers: &str, extra: &str) -> Self {
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
    {extra}
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
        let (child, lifeline) = spawn(&dir);
        let mut server = Self {
            child,
            lifeline,
            http_port,
            tcp_port,
            dir,
        };
        server.wait_ready().await;
        server
    }

    /// Kills the server (SIGKILL); its data directory stays.
    pub fn stop(&mut self) {
        self.lifeline.take();
        let _ = self.child.wait();
    }

    /// Sends the server a signal by name (`STOP` freezes it, `CONT` resumes).
    pub fn signal(&self, name: &str) {
        let pid = std::fs::read_to_string(self.dir.path().join("server.pid"))
            .expect("the watchdog wrote the server's pid");
        let status = Command::new("sh")
            .args(["-c", &format!("kill -s {name} {}", pid.trim())])
            .status()
            .expect("run sh -c kill");
        assert!(status.success(), "kill -s {name} {pid}");
    }

    /// Starts the stopped server again on its ports and data.
    pub async fn start_again(&mut self) {
        self.stop();
        (self.child, self.lifeline) = spawn(&self.dir);
        self.wait_ready().await;
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
        self.sql_in("default", statement).await
    }

    /// Runs a statement in `database` and returns its text output (TSV).
    pub async fn sql_in(&self, database: &str, statement: &str) -> String {
        let reply = reqwest::Client::new()
            .post(self.url(&format!("/?database={database}")))
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

/// Runs the server (`$0 $1`) and writes its pid to `server.pid`; a
/// background `cat` of the script's stdin (a pipe from the test, kept as fd
/// 3 since a background job's stdin is /dev/null) SIGKILLs it at EOF. The
/// script ends when the server does, so a server that dies is noticed.
const WATCHDOG: &str = r#"exec 3<&0
"$0" "$1" </dev/null >/dev/null 2>&1 3<&- &
pid=$!
echo $pid >server.pid
(cat <&3 >/dev/null; kill -9 $pid 2>/dev/null) &
wait $pid"#;

/// Starts the server under a watchdog `sh`: when the pipe on its stdin
/// closes (dropped, or this process gone), the server is SIGKILLed.
fn spawn(dir: &TempDir) -> (Child, Option<ChildStdin>) {
    let root = dir.path().display().to_string();
    let mut child = Command::new("sh")
        .args(["-c", WATCHDOG])
        .arg(server_binary())
        .arg(format!("--config-file={root}/config.xml"))
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start sh for {}: {e}", server_binary().display()));
    let lifeline = child.stdin.take();
    (child, lifeline)
}

/// The server shared by the tests that need none of their own, started by
/// the first of them.
pub async fn shared() -> Arc<ClickHouseServer> {
    static SHARED: OnceCell<Arc<ClickHouseServer>> = OnceCell::const_new();
    SHARED
        .get_or_init(|| async { Arc::new(ClickHouseServer::start().await) })
        .await
        .clone()
}

/// A database name no other test of this run uses, `<tag>_<n>`.
pub fn database(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!("{tag}_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An in-process otelite on `--store clickhouse`, in a database of its own
/// on the shared server.
pub async fn backend(tag: &str) -> super::Backend {
    super::Backend::start_on(super::Store::ClickHouse, tag, |_| {}).await
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        self.stop();
    }
}
