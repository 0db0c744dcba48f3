//! `multiprocessing.Pool`: a fixed set of worker processes that run many
//! short tasks (CATALOGUE.md sections 2 and 8).
//!
//! The tutorial's steps, in the order the code follows them:
//!
//! 1. `pool = Pool(processes=4)`: fork the workers ([`Pool::new`]); each
//!    waits on its end of a socket pair (`socketpair(2)`) for tasks;
//! 2. `pool.apply_async(f, args)`: queue a task and return at once with an
//!    [`AsyncResult`]; `map`, `starmap` and `imap` cut their input into chunks
//!    of `chunksize` items, one task per chunk;
//! 3. `result.get(timeout)`: wait for the value; while it waits, the pool
//!    hands queued tasks to idle workers and collects results (`poll(2)`);
//! 4. `pool.close()`: accept no more tasks; `pool.join()`: wait until every
//!    task is done, then end the workers and reap them (`waitpid(2)`);
//!    `pool.terminate()` (and drop, like the end of a with-block) ends them at
//!    once.
//!
//! A task is a plain function pointer plus arguments and a result that serde
//! can encode ([`crate::frame`]): a function pointer means the same code in a
//! forked worker, which is an exact copy of the parent. A worker that dies
//! (killed, or a panic that aborts) fails the task it was running with
//! [`Error::Died`] and is replaced: the pool never hangs (Python's can,
//! cpython issue 96062). `maxtasksperchild` retires a worker after that many
//! tasks and forks a fresh one.
//!
//! # The fork rule
//! Workers decode, run and encode tasks: not async-signal-safe work. So the
//! process that owns a pool must be single-threaded for the pool's whole life
//! (workers are also forked later, as replacements): [`Pool::new`] is
//! `unsafe` with that precondition. The `ipckit` binary is such a process;
//! the kit's pool tests run there (`ipckit __internal pool-*`).

use crate::error::{Error, Result};
use crate::frame::{decode, encode, read_frame, write_value};
use crate::process::{ChildGuard, Fork, fork_raw};
use crate::sys::SPIN;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How a [`Pool`] is made.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The number of worker processes (Python's `processes`).
    pub processes: usize,
    /// Retire a worker after this many tasks (Python's `maxtasksperchild`).
    pub max_tasks_per_child: Option<usize>,
    /// The deadline of `map`, `starmap`, `imap` items, `apply` and `join`.
    pub timeout: Duration,
}

impl PoolConfig {
    /// `processes` workers, no task limit, a 10-minute deadline.
    pub fn new(processes: usize) -> Self {
        PoolConfig {
            processes,
            max_tasks_per_child: None,
            timeout: Duration::from_secs(600),
        }
    }
}

/// A pool of worker processes. Dropping it terminates the workers.
pub struct Pool {
    inner: Rc<RefCell<Inner>>,
}

/// The future value of one task (Python's `AsyncResult`).
pub struct AsyncResult<R> {
    inner: Rc<RefCell<Inner>>,
    id: JobId,
    _result: PhantomData<R>,
}

/// The results of [`Pool::imap`], in input order, as they become ready.
pub struct IMap<R> {
    chunks: VecDeque<AsyncResult<Vec<R>>>,
    ready: std::vec::IntoIter<R>,
    timeout: Duration,
}

type JobId = u64;
/// Decodes arguments, calls the task function, encodes the result.
type Trampoline = fn(usize, &[u8]) -> std::result::Result<Vec<u8>, String>;

/// One task on the wire: which trampoline, which function, which arguments.
#[derive(Serialize, Deserialize)]
struct JobMsg {
    id: JobId,
    trampoline: usize,
    function: usize,
    args: Vec<u8>,
}

/// A worker's answer.
#[derive(Serialize, Deserialize)]
struct ResultMsg {
    id: JobId,
    result: std::result::Result<Vec<u8>, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Closed,
    Terminated,
}

struct Worker {
    child: ChildGuard,
    sock: UnixStream,
    job: Option<JobId>,
    done: usize,
}

struct Inner {
    config: PoolConfig,
    state: State,
    workers: Vec<Worker>,
    queue: VecDeque<JobMsg>,
    results: HashMap<JobId, Result<Vec<u8>>>,
    next_id: JobId,
}

impl Pool {
    /// `Pool(processes)`: forks `config.processes` workers.
    ///
    /// # Safety
    /// The calling process must be single-threaded, and stay so while the
    /// pool lives: workers (and their replacements) are forked and run
    /// non-async-signal-safe code (see the module documentation).
    pub unsafe fn new(config: PoolConfig) -> Result<Pool> {
        if config.processes == 0 {
            return Err(Error::invalid(
                "processes",
                "a pool needs at least one worker",
            ));
        }
        let mut inner = Inner {
            config,
            state: State::Running,
            workers: Vec::new(),
            queue: VecDeque::new(),
            results: HashMap::new(),
            next_id: 0,
        };
        for _ in 0..inner.config.processes {
            inner.spawn_worker()?;
        }
        Ok(Pool {
            inner: Rc::new(RefCell::new(inner)),
        })
    }

    /// The workers' pids (for tests and demonstrations).
    pub fn worker_pids(&self) -> Vec<nix::unistd::Pid> {
        let inner = self.inner.borrow();
        inner.workers.iter().map(|w| w.child.pid()).collect()
    }

    /// `pool.apply_async(f, (args,))`: queues `f(args)` and returns at once.
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, args: A) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.submit(call_one::<A, R>, f as usize, &args)
    }

    /// `pool.apply(f, (args,))`: runs `f(args)` in a worker and waits.
    pub fn apply<A, R>(&self, f: fn(A) -> R, args: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let timeout = self.inner.borrow().config.timeout;
        self.apply_async(f, args)?.get(timeout)
    }

    /// `pool.map(f, items, chunksize)`: `[f(x) for x in items]`, computed by
    /// the workers `chunksize` items per task, returned in input order.
    pub fn map<A, R>(&self, f: fn(A) -> R, items: Vec<A>, chunksize: usize) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.imap(f, items, chunksize)?.collect()
    }

    /// `pool.starmap(f, pairs, chunksize)`: `[f(a, b) for (a, b) in pairs]`.
    pub fn starmap<A, B, R>(
        &self,
        f: fn(A, B) -> R,
        items: Vec<(A, B)>,
        chunksize: usize,
    ) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.chunked(call_chunk2::<A, B, R>, f as usize, items, chunksize)?
            .collect()
    }

    /// `pool.imap(f, items, chunksize)`: like [`map`](Self::map), but the
    /// results come one by one, in order, as their chunks finish.
    pub fn imap<A, R>(&self, f: fn(A) -> R, items: Vec<A>, chunksize: usize) -> Result<IMap<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.chunked(call_chunk::<A, R>, f as usize, items, chunksize)
    }

    fn chunked<A: Serialize, R>(
        &self,
        trampoline: Trampoline,
        function: usize,
        mut items: Vec<A>,
        chunksize: usize,
    ) -> Result<IMap<R>> {
        if chunksize == 0 {
            return Err(Error::invalid("chunksize", "must be at least 1"));
        }
        let mut chunks = VecDeque::new();
        while !items.is_empty() {
            let rest = items.split_off(chunksize.min(items.len()));
            chunks.push_back(self.submit(trampoline, function, &items)?);
            items = rest;
        }
        Ok(IMap {
            chunks,
            ready: Vec::new().into_iter(),
            timeout: self.inner.borrow().config.timeout,
        })
    }

    fn submit<A: Serialize, R>(
        &self,
        trampoline: Trampoline,
        function: usize,
        args: &A,
    ) -> Result<AsyncResult<R>> {
        let mut inner = self.inner.borrow_mut();
        if inner.state != State::Running {
            return Err(Error::Closed(
                "the pool (no task is accepted after close)".into(),
            ));
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let args = encode(args)?;
        let trampoline = trampoline as usize;
        inner.queue.push_back(JobMsg {
            id,
            trampoline,
            function,
            args,
        });
        inner.dispatch()?;
        Ok(AsyncResult {
            inner: Rc::clone(&self.inner),
            id,
            _result: PhantomData,
        })
    }

    /// `pool.close()`: no more tasks are accepted; queued ones still run.
    pub fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        if inner.state == State::Running {
            inner.state = State::Closed;
        }
    }

    /// `pool.join()`: after `close` (or `terminate`), waits until every
    /// queued task is done, then ends and reaps every worker.
    ///
    /// It waits at most the pool's `timeout`; past it, [`Error::Timeout`],
    /// and the tasks keep running (`terminate`, or the drop, ends them).
    pub fn join(&self) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        if inner.state == State::Running {
            return Err(Error::invalid(
                "join",
                "call close() or terminate() before join()",
            ));
        }
        let timeout = inner.config.timeout;
        let deadline = Instant::now() + timeout;
        while inner.busy() {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "join of the pool (tasks still running)".into(),
                    after: timeout,
                });
            }
            inner.pump(deadline)?;
        }
        inner.end_workers(false)
    }

    /// `pool.terminate()`: ends the workers at once (`SIGTERM`, then
    /// `SIGKILL` if needed), failing every unfinished task with [`Error::Closed`].
    pub fn terminate(&self) -> Result<()> {
        self.inner.borrow_mut().terminate()
    }
}

impl Drop for Pool {
    /// The end of Python's `with Pool(...)` block: `terminate()`.
    fn drop(&mut self) {
        let _ = self.inner.borrow_mut().terminate();
    }
}

impl<R: DeserializeOwned> AsyncResult<R> {
    /// `result.get(timeout)`: waits at most `timeout` for the value. A task
    /// that panicked or whose worker died is an error; so is the deadline
    /// ([`Error::Timeout`]; the task keeps running and `get` may be retried).
    pub fn get(&self, timeout: Duration) -> Result<R> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.borrow_mut();
        loop {
            if let Some(result) = inner.results.remove(&self.id) {
                return decode(&result?);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("task {} of the pool", self.id),
                    after: timeout,
                });
            }
            inner.pump(deadline)?;
        }
    }

    /// `result.ready()`: whether the value has arrived (without waiting).
    pub fn ready(&self) -> Result<bool> {
        let mut inner = self.inner.borrow_mut();
        inner.pump(Instant::now())?;
        Ok(inner.results.contains_key(&self.id))
    }
}

impl<R: DeserializeOwned> Iterator for IMap<R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(r) = self.ready.next() {
                return Some(Ok(r));
            }
            let chunk = self.chunks.pop_front()?;
            match chunk.get(self.timeout) {
                Ok(items) => self.ready = items.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl Inner {
    /// True while a task is queued or running.
    fn busy(&self) -> bool {
        !self.queue.is_empty() || self.workers.iter().any(|w| w.job.is_some())
    }

    /// Forks one worker with a fresh socket pair.
    fn spawn_worker(&mut self) -> Result<()> {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| Error::io("socketpair for a pool worker", e))?;
        let _ = std::io::Write::flush(&mut std::io::stdout());
        // SAFETY: Pool::new's caller promised a single-threaded process, so the
        // child may run the worker loop (which allocates and does IO).
        match unsafe { fork_raw() }? {
            Fork::Child => {
                for w in &self.workers {
                    // SAFETY: closes the child's copy of a sibling's socket, so the
                    // sibling sees end of file when the parent closes its end.
                    unsafe { libc::close(w.sock.as_raw_fd()) };
                }
                drop(ours);
                crate::process::exit_immediately(worker_loop(theirs))
            }
            Fork::Parent(child) => {
                self.workers.push(Worker {
                    child,
                    sock: ours,
                    job: None,
                    done: 0,
                });
                Ok(())
            }
        }
    }

    /// Hands queued tasks to idle workers.
    fn dispatch(&mut self) -> Result<()> {
        for i in 0..self.workers.len() {
            if self.workers[i].job.is_some() {
                continue;
            }
            let Some(job) = self.queue.pop_front() else {
                return Ok(());
            };
            let w = &mut self.workers[i];
            match write_value(&mut w.sock, &job) {
                Ok(()) => w.job = Some(job.id),
                Err(Error::Io { .. }) => {
                    self.queue.push_front(job); // the worker died idle; the task waits for its replacement
                    self.replace(i, None)?;
                }
                // The task cannot be put in a frame (too big): it fails alone.
                Err(e) => {
                    self.results.insert(job.id, Err(e));
                }
            }
        }
        Ok(())
    }

    /// One round: dispatch, then wait (until `deadline`) for a worker to say
    /// something, and take in every result or death. A `deadline` already
    /// passed is one non-blocking look.
    fn pump(&mut self, deadline: Instant) -> Result<()> {
        self.dispatch()?;
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let ready: Vec<usize> = {
            let mut fds: Vec<PollFd> = self
                .workers
                .iter()
                .map(|w| PollFd::new(w.sock.as_fd(), PollFlags::POLLIN))
                .collect();
            // Spin briefly first (a result usually comes within microseconds
            // from a worker on the other core), then sleep in poll(2). The
            // spin's successful poll already filled in `revents`.
            let spun = !left.is_zero() && crate::sys::spin_until_ready(&mut fds, SPIN);
            if !spun {
                match poll(
                    &mut fds,
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
                ) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => {
                        return Err(crate::sys::errno_error("poll", "pool workers", e as i32));
                    }
                }
            }
            fds.iter()
                .enumerate()
                .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(i, _)| i)
                .collect()
        };
        for i in ready.into_iter().rev() {
            self.take_result(i)?;
        }
        self.dispatch()
    }

    /// Reads worker `i`'s result, or learns that it died.
    fn take_result(&mut self, i: usize) -> Result<()> {
        let w = &mut self.workers[i];
        match read_frame(&mut w.sock, crate::frame::DEFAULT_MAX_FRAME)
            .and_then(|b| decode::<ResultMsg>(&b))
        {
            Ok(msg) => {
                w.job = None;
                w.done += 1;
                let result = msg.result.map_err(|e| {
                    Error::Died(format!("the task failed in worker {}: {e}", w.child.pid()))
                });
                self.results.insert(msg.id, result);
                let limit = self.config.max_tasks_per_child;
                if limit.is_some_and(|n| self.workers[i].done >= n) {
                    self.replace(i, None)?;
                }
                Ok(())
            }
            Err(e) => {
                let job = w.job.take();
                self.replace(i, job.map(|id| (id, e)))
            }
        }
    }

    /// Ends worker `i` (closing its socket: a live worker exits on end of
    /// file), reaps it, fails its task if it died with one, and forks a
    /// replacement unless the pool is terminated.
    fn replace(&mut self, i: usize, lost: Option<(JobId, Error)>) -> Result<()> {
        let Worker {
            mut child, sock, ..
        } = self.workers.swap_remove(i);
        drop(sock);
        let status = child.wait_deadline(Duration::from_secs(5));
        if let Some((id, e)) = lost {
            let how = status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            let why = format!("worker {} {how} while running task {id} ({e})", child.pid());
            self.results.insert(id, Err(Error::Died(why)));
        }
        if self.state != State::Terminated {
            self.spawn_worker()?;
        }
        Ok(())
    }

    /// Closes every worker's socket and reaps it; `kill` first sends `SIGTERM`.
    fn end_workers(&mut self, kill: bool) -> Result<()> {
        let mut first_error = Ok(());
        for Worker {
            mut child, sock, ..
        } in self.workers.drain(..)
        {
            if kill {
                let _ = child.signal(nix::sys::signal::Signal::SIGTERM);
            }
            drop(sock);
            if let Err(e) = child.wait_deadline(Duration::from_secs(5)) {
                first_error = first_error.and(Err(e));
            }
        }
        first_error
    }

    fn terminate(&mut self) -> Result<()> {
        self.state = State::Terminated;
        for job in self.queue.drain(..) {
            self.results
                .insert(job.id, Err(Error::Closed("the pool (terminated)".into())));
        }
        for w in &self.workers {
            if let Some(id) = w.job {
                self.results
                    .insert(id, Err(Error::Closed("the pool (terminated)".into())));
            }
        }
        self.end_workers(true)
    }
}

/// A worker's life: read a task, run it, write the result; end of file (the
/// pool closed our socket) means exit.
fn worker_loop(sock: UnixStream) -> i32 {
    // Buffered reads take a task's length prefix and body in one `read(2)`.
    let mut reader = std::io::BufReader::new(crate::sys::SpinRead::new(&sock, SPIN));
    let mut sock = &sock;
    loop {
        let job: JobMsg = match read_frame(&mut reader, crate::frame::DEFAULT_MAX_FRAME)
            .and_then(|b| decode(&b))
        {
            Ok(job) => job,
            Err(Error::Eof(_)) => return 0,
            Err(_) => return 1,
        };
        // SAFETY: the pool put the address of a `Trampoline` in `trampoline`,
        // in the process this worker is a fork of: the same code at the same address.
        let trampoline: Trampoline =
            unsafe { std::mem::transmute::<usize, Trampoline>(job.trampoline) };
        let result = std::panic::catch_unwind(|| trampoline(job.function, &job.args))
            .unwrap_or_else(|p| Err(format!("task panicked: {}", panic_message(&p))));
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let msg = ResultMsg { id: job.id, result };
        if write_value(&mut sock, &msg).is_err() {
            return 1;
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Runs one `fn(A) -> R` on encoded arguments.
fn call_one<A: DeserializeOwned, R: Serialize>(
    f: usize,
    args: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    // SAFETY: `f` is the address of an `fn(A) -> R` taken in the process this
    // worker was forked from (apply_async's caller), with these very A and R.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    let a: A = decode(args).map_err(|e| e.to_string())?;
    encode(&f(a)).map_err(|e| e.to_string())
}

/// Runs `fn(A) -> R` on every item of an encoded chunk.
fn call_chunk<A: DeserializeOwned, R: Serialize>(
    f: usize,
    args: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    // SAFETY: as in `call_one`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    let chunk: Vec<A> = decode(args).map_err(|e| e.to_string())?;
    encode(&chunk.into_iter().map(f).collect::<Vec<R>>()).map_err(|e| e.to_string())
}

/// Runs `fn(A, B) -> R` on every pair of an encoded chunk (`starmap`).
fn call_chunk2<A: DeserializeOwned, B: DeserializeOwned, R: Serialize>(
    f: usize,
    args: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    // SAFETY: as in `call_one`, for an `fn(A, B) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(f) };
    let chunk: Vec<(A, B)> = decode(args).map_err(|e| e.to_string())?;
    encode(&chunk.into_iter().map(|(a, b)| f(a, b)).collect::<Vec<R>>()).map_err(|e| e.to_string())
}
