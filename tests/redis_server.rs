//! A real `redis-server` for tests, listening only on a unix socket in a
//! temporary directory of its own: no port to race for, and no way to
//! reach (and silently share) another test's server. Stopped and restarted
//! on demand, killed when dropped. No Redis client: readiness is an inline
//! `PING` over the socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};

/// How often to look whether a starting server answers, and for how long
/// in all.
const STARTING: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(5))
    .with_max_delay(Duration::from_millis(100))
    .without_max_times()
    .with_total_delay(Some(Duration::from_secs(10)));

/// A `redis-server` child process on a unix socket, without persistence.
///
/// The binary is `$HOTWASM_REDIS_SERVER` or `redis-server` on the `PATH`.
#[derive(Debug)]
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Configuration options added to every start (`--requirepass`, TLS).
    extra: Vec<String>,
}

/// Why a starting server is not answering: not yet, or never (shown in
/// the panic message).
#[derive(Debug)]
enum NotReady {
    Starting,
    #[allow(dead_code, reason = "read by Debug, in the panic message")]
    Exited(ExitStatus),
}

impl RedisServer {
    /// Starts a server in a fresh temporary directory and waits until it
    /// answers `PING` on its socket.
    ///
    /// # Panics
    ///
    /// When `redis-server` cannot be started or does not answer within
    /// 10 s, with its log and a message saying how to install it.
    pub fn start() -> RedisServer {
        RedisServer::start_with(Vec::new())
    }

    /// As [`RedisServer::start`], with more configuration options (e.g.
    /// `--requirepass`, `--tls-port`); a server that asks for a password
    /// counts as answering when it says so.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`].
    pub fn start_with(extra: Vec<String>) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("hotwasm-redis-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a directory for redis-server: {e}"));
        let mut server = RedisServer {
            dir,
            child: None,
            extra,
        };
        server.spawn();
        server
    }

    /// The server's own temporary directory (for certificates and such).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The unix socket the server listens on (the same across restarts).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The server's process id while it runs (for signals).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `redis+unix:///<dir>/redis.sock`, the URL clients connect with.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Kills the server and waits for it to exit; everything it held is
    /// lost (no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A killed server leaves its socket file behind.
        let _ = std::fs::remove_file(self.socket());
    }

    /// Stops the server if it runs, and starts a fresh, empty one on the
    /// same socket.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`].
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let binary = std::env::var_os("HOTWASM_REDIS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let socket = self.socket();
        let log = self.dir.path().join("redis.log");
        let mut child = Command::new(&binary)
            .args(["--port", "0"])
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (install redis-server, e.g. `apt-get install redis-server`, \
                     or set HOTWASM_REDIS_SERVER to its path)",
                    binary.display()
                )
            });
        let ready = (|| match child.try_wait() {
            Ok(Some(status)) => Err(NotReady::Exited(status)),
            _ if answers_ping(&socket) => Ok(()),
            _ => Err(NotReady::Starting),
        })
        .retry(STARTING)
        .sleep(std::thread::sleep)
        .when(|e| matches!(e, NotReady::Starting))
        .call();
        if let Err(why) = ready {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "{} did not answer PING on {} ({why:?}; install redis-server, e.g. `apt-get install \
                 redis-server`, or set HOTWASM_REDIS_SERVER to its path); its log:\n{log}",
                binary.display(),
                socket.display(),
            );
        }
        self.child = Some(child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether something on `socket` answers an inline `PING` with `+PONG`
/// (or `-NOAUTH`: up, and asking for a password).
fn answers_ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && (&answer == b"+PONG\r\n" || &answer == b"-NOAUTH")
}
