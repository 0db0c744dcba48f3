//! `multiprocessing.Manager`: a server process that owns shared objects,
//! reached from other processes through proxies (CATALOGUE.md section 6).
//!
//! The tutorial's steps, and where each lives:
//!
//! 1. `with multiprocessing.Manager() as manager:` starts the server process
//!    ([`Manager::start`]; the server is [`server`]) and shuts it down at the
//!    end of the block ([`Manager::shutdown`], or drop);
//! 2. `records = manager.list([...])`, `manager.dict()`, `manager.Namespace()`
//!    make shared objects in the server and return proxies ([`ListProxy`],
//!    [`DictProxy`], [`NamespaceProxy`]);
//! 3. the proxies are passed to child processes, which call their methods:
//!    each call is a request over a Unix socket ([`protocol`]), made after a
//!    challenge-response handshake with the manager's key ([`auth`]);
//! 4. every process sees every other's updates, because there is one copy:
//!    the server's. Values are a small dynamic type that prints like Python
//!    ([`PyValue`]).
//!
//! # Why the server is exec'd, not just forked
//! Python forks the server. A forked server runs threads, allocates and does
//! socket IO; in a multi-threaded parent (every test binary) a forked child
//! may only do async-signal-safe work. So [`Manager::start`] forks *and
//! execs* the `ipckit` binary (`ipckit __internal manager-server`), which is
//! sound from any process and is why `start` is safe. The binary's path is
//! [`ManagerConfig::program`] (by default the current executable, which is
//! right inside `ipckit`; tests pass `env!("CARGO_BIN_EXE_ipckit")`).
//!
//! # From any program
//! The server need not be the `ipckit` binary: any program whose `main`
//! starts with [`serve_if_asked`] can start a manager with the default
//! [`ManagerConfig`] (Python's `freeze_support()` plays the same part for
//! frozen executables). `Manager::start` then execs the program itself with
//! [`SERVE_ENV`] set, and `serve_if_asked` turns that copy into the server.
//! See `examples/manager_anywhere.rs`.
//!
//! The socket lives in a private directory (mode 0700, unique per run) under
//! the temp dir; the key reaches the server on its standard input, never on
//! the command line or the socket. Shutdown (explicit or on drop) stops and
//! reaps the server and removes the socket and the directory.

pub mod auth;
mod link;
pub mod protocol;
mod proxy;
pub mod server;

pub use crate::pyvalue::{Op, PyValue};
pub use auth::AuthKey;
pub use link::{Link, RECORD, pair};
pub use proxy::{Client, DictProxy, ListProxy, NamespaceProxy};

use crate::error::{Error, Result};
use crate::process::ChildGuard;
use nix::unistd::Pid;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// The environment variable that tells a program started by
/// [`Manager::start`] to serve: it holds the socket path.
pub const SERVE_ENV: &str = "IPCKIT_MANAGER_SOCKET";

/// Serves a manager if this process was started to be one, and returns at
/// once otherwise. Call it first thing in `main` of a program that starts a
/// [`Manager`] without the `ipckit` binary (like Python's
/// `multiprocessing.freeze_support()`):
///
/// ```no_run
/// // First thing in main:
/// ipckit::manager::serve_if_asked();
/// // From here on, the default configuration works:
/// let manager = ipckit::manager::Manager::start(&Default::default())?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// When [`SERVE_ENV`] is set, it reads the key from standard input, binds the
/// socket (`socket(2)`, `bind(2)`, `listen(2)`) and serves until shut down,
/// then exits the process ([`server::run_stdio`]); it never returns.
pub fn serve_if_asked() {
    let Some(socket) = std::env::var_os(SERVE_ENV) else {
        return;
    };
    let code = server::run_stdio(Path::new(&socket)).unwrap_or_else(|e| {
        eprintln!("ipckit manager server: {e}");
        1
    });
    std::process::exit(code);
}

/// How a [`Manager`] starts its server.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// The `ipckit` binary to exec as the server (`None`: the current executable).
    pub program: Option<PathBuf>,
    /// The deadline of every call, and of the server's start-up.
    pub timeout: Duration,
    /// Where the private directory is made (`None`: the temp dir, `$TMPDIR`).
    pub parent_dir: Option<PathBuf>,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            program: None,
            timeout: Duration::from_secs(10),
            parent_dir: None,
        }
    }
}

/// The owner of a manager's server process, its socket and its directory.
pub struct Manager {
    dir: PathBuf,
    address: PathBuf,
    key: AuthKey,
    owner: u32,
    server: Option<ChildGuard>,
    lifeline: Option<ChildStdin>,
    client: Option<Rc<Client>>,
    timeout: Duration,
}

impl Manager {
    /// Starts the server: makes a private directory (`mkdir(2)`, mode 0700),
    /// a random key, and spawns `ipckit __internal manager-server` (`fork(2)`
    /// then `execve(2)`), handing it the key on standard input; waits (at
    /// most `config.timeout`) until it listens, then connects.
    pub fn start(config: &ManagerConfig) -> Result<Manager> {
        let dir = private_dir(config.parent_dir.as_deref())?;
        let mut manager = Manager {
            address: dir.join("listener"),
            dir,
            key: AuthKey::random()?,
            owner: std::process::id(),
            server: None,
            lifeline: None,
            client: None,
            timeout: config.timeout,
        };
        manager.spawn_server(config)?; // on error, drop removes the directory
        manager.client = Some(Client::connect(
            &manager.address,
            &manager.key,
            config.timeout,
        )?);
        Ok(manager)
    }

    fn spawn_server(&mut self, config: &ManagerConfig) -> Result<()> {
        if std::env::var_os(SERVE_ENV).is_some() {
            return Err(Error::Protocol(format!(
                "this process was started to serve a manager, but it did not call \
                 ipckit::manager::serve_if_asked() first thing in main ({SERVE_ENV} is set)"
            )));
        }
        let program = match &config.program {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|e| Error::io("current executable", e))?,
        };
        let mut child = Command::new(&program)
            .args(["__internal", "manager-server", "--socket"])
            .arg(&self.address)
            .env(SERVE_ENV, &self.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(program.display().to_string(), e))?;
        self.server = Some(ChildGuard::adopt(Pid::from_raw(child.id() as i32)));
        let mut stdin = child.stdin.take().expect("stdin was piped");
        let stdout = child.stdout.take().expect("stdout was piped");
        let not_a_server = |why: String| {
            Error::Protocol(format!(
                "{} cannot serve a manager ({why}); call \
                 ipckit::manager::serve_if_asked() first thing in its main, \
                 or set ManagerConfig::program to the ipckit binary",
                program.display()
            ))
        };
        writeln!(stdin, "{}", self.key.to_hex())
            .map_err(|e| not_a_server(format!("handing it the key failed: {e}")))?;
        self.lifeline = Some(stdin);
        let what = format!("the manager server {} to listen", program.display());
        let got =
            crate::sys::read_exact_timeout(&stdout, server::READY.len(), config.timeout, &what)
                .map_err(|e| match e {
                    Error::Eof(_) => not_a_server("it exited before it listened".into()),
                    other => other,
                })?;
        if got != server::READY {
            return Err(not_a_server(format!(
                "it said {:?}",
                String::from_utf8_lossy(&got)
            )));
        }
        Ok(())
    }

    /// The server's socket path (Python's `manager.address`).
    pub fn address(&self) -> &Path {
        &self.address
    }

    /// The private directory holding the socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key clients must prove they hold (Python's `authkey`).
    pub fn authkey(&self) -> &AuthKey {
        &self.key
    }

    /// The server's pid (`None` after shutdown).
    pub fn server_pid(&self) -> Option<Pid> {
        self.server.as_ref().map(ChildGuard::pid)
    }

    /// A second, independent connection to this manager (as another process
    /// would make with the address and key).
    pub fn connect(&self) -> Result<Rc<Client>> {
        Client::connect(&self.address, &self.key, self.timeout)
    }

    fn client(&self) -> Result<&Rc<Client>> {
        self.client
            .as_ref()
            .ok_or_else(|| Error::Closed(format!("the manager at {}", self.address.display())))
    }

    /// `manager.list(items)`.
    pub fn list(&self, items: Vec<PyValue>) -> Result<ListProxy> {
        ListProxy::create(self.client()?, items)
    }

    /// `manager.dict()` with initial pairs.
    pub fn dict(&self, pairs: Vec<(PyValue, PyValue)>) -> Result<DictProxy> {
        DictProxy::create(self.client()?, pairs)
    }

    /// `manager.Namespace()`.
    pub fn namespace(&self) -> Result<NamespaceProxy> {
        NamespaceProxy::create(self.client()?)
    }

    /// `manager.shutdown()`: asks the server to stop, closes its lifeline,
    /// reaps it (killing it if it has not gone within the timeout), and
    /// removes the socket and the directory. Proxies used afterwards fail with
    /// [`Error::Closed`]. Reports a server that had died as [`Error::Died`].
    pub fn shutdown(&mut self) -> Result<()> {
        if std::process::id() != self.owner {
            return Ok(()); // a forked child's copy owns nothing
        }
        let asked = match self.client.take() {
            Some(client) => {
                let r = client.call(&protocol::Request::Shutdown);
                client.close();
                r.map(drop)
            }
            None => Ok(()),
        };
        self.lifeline.take();
        let reaped = match self.server.take() {
            Some(mut server) => server.wait_deadline(self.timeout).map(Some),
            None => Ok(None),
        };
        let _ = std::fs::remove_file(&self.address);
        let removed = std::fs::remove_dir(&self.dir);
        match (asked, reaped?) {
            (_, Some(status)) if !status.success() => {
                Err(Error::Died(format!("the manager server {status}")))
            }
            (Err(e), _) => Err(e),
            _ => removed.or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(Error::io(self.dir.display().to_string(), e)),
            }),
        }
    }
}

impl Drop for Manager {
    /// The end of Python's with-block: shut down, ignoring errors.
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Makes `<parent or $TMPDIR>/ipckit-manager-<pid>-<n>` with mode 0700
/// (`mkdir(2)`): only this user can reach the socket inside.
fn private_dir(parent: Option<&Path>) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = parent.join(format!("ipckit-manager-{}-{n}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(dir.display().to_string(), e))?;
    Ok(dir)
}
