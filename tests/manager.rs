//! CATALOGUE.md section 6, the Manager: the reference programs under the
//! audit, and the library in-process. The server is exec'd (`ipckit
//! __internal manager-server`), so a test binary may start it safely; tests
//! that fork children using proxies go through the `ipckit` binary.

mod common;

use common::{audited, audited_cmd, ipckit};
use ipckit::Error;
use ipckit::audit::Scope;
use ipckit::frame::{decode, read_frame, write_frame};
use ipckit::manager::protocol::{MAX_MESSAGE, Reply};
use ipckit::manager::server::{HANDSHAKE_TIMEOUT, MAX_CONNECTIONS};
use ipckit::manager::{AuthKey, Client, Link, Manager, ManagerConfig, Op, PyValue};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

fn config() -> ManagerConfig {
    ManagerConfig {
        program: Some(ipckit().into()),
        timeout: Duration::from_secs(5),
        parent_dir: None,
    }
}

/// A started manager whose server pid is tracked by `scope`.
fn start(scope: &mut Scope) -> Manager {
    let m = Manager::start(&config()).expect("start the manager");
    scope.track(m.server_pid().unwrap());
    m
}

#[test]
fn manager_list_prints_every_record_after_the_append() {
    let run = audited("manager-list", &[]);
    run.assert_clean();
    let mut want = vec!["A New record is added".to_string()];
    for (name, score) in [
        ("Computers", 1),
        ("Histoty", 5),
        ("Hindi", 9),
        ("English", 3),
    ] {
        want.push(format!("Name: {name}"));
        want.push(format!("Score: {score}"));
    }
    assert_eq!(run.lines(), want);
}

#[test]
fn manager_namespace_shows_the_childs_updates() {
    let run = audited("manager-namespace", &[]);
    run.assert_clean();
    assert_eq!(
        run.lines(),
        ["before Namespace(x=1, y=1)", "after Namespace(x=6, y=10)"]
    );
}

#[test]
fn proxies_share_state_and_print_like_python() {
    let mut scope = Scope::new();
    let m = start(&mut scope);
    let l = m.list(vec![("Computers", 1).into()]).unwrap();
    l.append(PyValue::None).unwrap();
    l.append("x").unwrap();
    assert_eq!(l.to_string(), "[('Computers', 1), None, 'x']");
    assert_eq!(l.get(-1).unwrap(), PyValue::from("x"));
    let e = l.get(3).unwrap_err();
    assert!(e.to_string().contains("IndexError"), "{e}");

    let d = m.dict(vec![("a".into(), 1.into())]).unwrap();
    d.set("b", vec![PyValue::from(1), 2.into()]).unwrap();
    assert_eq!(d.get("b").unwrap().to_string(), "[1, 2]");
    assert!(
        d.get("zz")
            .unwrap_err()
            .to_string()
            .contains("KeyError: 'zz'")
    );
    assert_eq!(d.len().unwrap(), 2);

    let ns = m.namespace().unwrap();
    for (k, v) in [("y", 1), ("x", 1), ("_hidden", 3), ("x1", 2)] {
        ns.set(k, v).unwrap();
    }
    // Python sorts the "name=value" strings: "x1=2" < "x=1" because '1' < '='.
    assert_eq!(ns.to_string(), "Namespace(x1=2, x=1, y=1)");
    assert!(
        ns.get("z")
            .unwrap_err()
            .to_string()
            .contains("AttributeError")
    );
    drop(m);
    scope.assert_clean();
}

#[test]
fn get_then_set_loses_an_update_but_the_atomic_update_does_not() {
    let mut scope = Scope::new();
    let m = start(&mut scope);
    let ns = m.namespace().unwrap();
    ns.set("x", 1).unwrap();
    // Two clients (as two processes would be) interleave Python's `ns.x += 5`.
    let (a, b) = (ns.via(&m.connect().unwrap()), ns.via(&m.connect().unwrap()));
    let (seen_a, seen_b) = (a.get("x").unwrap(), b.get("x").unwrap());
    a.set("x", seen_a.apply(&Op::Add(5.into())).unwrap())
        .unwrap();
    b.set("x", seen_b.apply(&Op::Add(5.into())).unwrap())
        .unwrap();
    assert_eq!(ns.get("x").unwrap(), PyValue::Int(6), "one += was lost");

    ns.set("x", 1).unwrap();
    a.update("x", Op::Add(5.into())).unwrap();
    b.update("x", Op::Add(5.into())).unwrap();
    assert_eq!(ns.get("x").unwrap(), PyValue::Int(11), "no update is lost");
    drop(m);
    scope.assert_clean();
}

#[test]
fn a_client_with_the_wrong_key_is_refused_and_the_server_goes_on() {
    let mut scope = Scope::new();
    let m = start(&mut scope);
    let wrong = AuthKey::from_bytes(*b"not the key");
    let e = Client::connect(m.address(), &wrong, Duration::from_secs(5)).unwrap_err();
    assert!(e.to_string().contains("authentication failed"), "{e}");
    assert!(m.connect().is_ok());
    drop(m);
    scope.assert_clean();
}

#[test]
fn malformed_requests_get_an_error_reply_and_do_not_crash_the_server() {
    let mut scope = Scope::new();
    let m = start(&mut scope);
    let ns = m.namespace().unwrap();
    let mut raw = ipckit::manager::Link::connect(m.address()).unwrap();
    raw.socket()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    ipckit::manager::auth::client_handshake(&mut raw, m.authkey()).unwrap();
    write_frame(&mut raw, &[0xff, 0xfe, 0x01]).unwrap();
    let reply: Reply = decode(&read_frame(&mut raw, MAX_MESSAGE).unwrap()).unwrap();
    assert!(reply.unwrap_err().contains("malformed request"));
    // A length prefix beyond the limit: an error reply, then the server hangs up.
    std::io::Write::write_all(&mut raw, &u32::MAX.to_le_bytes()).unwrap();
    let reply: Reply = decode(&read_frame(&mut raw, MAX_MESSAGE).unwrap()).unwrap();
    assert!(reply.unwrap_err().contains("larger than the limit"));
    assert!(matches!(
        read_frame(&mut raw, MAX_MESSAGE),
        Err(Error::Eof(_))
    ));
    ns.set("still", "alive").unwrap();
    assert_eq!(ns.get("still").unwrap(), PyValue::from("alive"));
    drop(m);
    scope.assert_clean();
}

/// A raw connection to `m` that has passed the handshake.
fn raw_client(m: &Manager) -> ipckit::Result<Link> {
    let mut raw = Link::connect(m.address()).unwrap();
    raw.socket()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    ipckit::manager::auth::client_handshake(&mut raw, m.authkey())?;
    Ok(raw)
}

/// `Request::Append { id: 1, value }` encoded by hand (postcard: variant 4,
/// the id, the value), with `value` a list nested `depth` deep.
fn deep_append(depth: usize) -> Vec<u8> {
    let mut bytes = vec![4u8, 1];
    bytes.extend([6u8, 1].repeat(depth - 1)); // PyValue::List of one item...
    bytes.extend([6u8, 0]); // ...down to an empty list
    bytes
}

#[test]
fn a_request_nested_100_000_deep_gets_an_error_reply_and_the_server_lives() {
    let mut scope = Scope::new();
    let mut m = start(&mut scope);
    let list = m.list(vec![]).unwrap();
    let mut raw = raw_client(&m).unwrap();
    let deep = deep_append(100_000);
    assert!(deep.len() > 200_000);
    write_frame(&mut raw, &deep).unwrap();
    let reply: Reply = decode(&read_frame(&mut raw, MAX_MESSAGE).unwrap()).unwrap();
    let err = reply.unwrap_err();
    assert!(err.contains("malformed request"), "{err}");
    // The connection is still in step, and a value within the limit is fine.
    write_frame(&mut raw, &deep_append(ipckit::pyvalue::MAX_DEPTH - 1)).unwrap();
    let reply: Reply = decode(&read_frame(&mut raw, MAX_MESSAGE).unwrap()).unwrap();
    assert_eq!(reply, Ok(PyValue::None));
    // Legitimate clients never noticed.
    list.append(PyValue::Int(7)).unwrap();
    assert_eq!(list.len().unwrap(), 2);
    m.shutdown().unwrap();
    scope.assert_clean();
}

/// A client that sends its handshake a byte at a time, each well within the
/// old per-read timeout, is cut off once the one handshake deadline passes.
#[test]
fn a_handshake_dribbled_a_byte_at_a_time_is_cut_off_at_its_deadline() {
    let mut scope = Scope::new();
    let mut m = start(&mut scope);
    let ns = m.namespace().unwrap();
    let slow = Link::connect(m.address()).unwrap();
    let start = Instant::now();
    // The length of a 200-byte answer to the challenge; its bytes follow slowly.
    std::io::Write::write(&mut slow.socket(), &200u32.to_le_bytes()).unwrap();
    let cut_off = loop {
        // Legitimate clients keep working throughout.
        ns.set("alive", 1).unwrap();
        assert_eq!(ns.get("alive").unwrap(), PyValue::Int(1));
        if std::io::Write::write(&mut slow.socket(), &[0]).is_err() {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < HANDSHAKE_TIMEOUT * 4,
            "a dribbling client held the handshake for {:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(cut_off >= HANDSHAKE_TIMEOUT, "cut off early: {cut_off:?}");
    m.shutdown().unwrap();
    scope.assert_clean();
}

/// Past [`MAX_CONNECTIONS`] a connection is refused with a clear error; the
/// connections already open keep working, and a freed slot is reused.
#[test]
fn connections_past_the_limit_are_refused_clearly_and_the_rest_keep_working() {
    let mut scope = Scope::new();
    let mut m = start(&mut scope);
    let list = m.list(vec![]).unwrap(); // the manager's own connection
    let mut open = Vec::new();
    let refusal = loop {
        match raw_client(&m) {
            Ok(link) => open.push(link),
            Err(e) => break e,
        }
        assert!(open.len() < MAX_CONNECTIONS, "no limit");
    };
    assert_eq!(open.len(), MAX_CONNECTIONS - 1);
    let why = refusal.to_string();
    assert!(
        why.contains("refused the connection") && why.contains("limit"),
        "{why}"
    );
    list.append(PyValue::Int(1)).unwrap();
    assert_eq!(list.len().unwrap(), 1);
    open.pop();
    let start = Instant::now();
    while raw_client(&m).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the freed slot never came back"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(open);
    m.shutdown().unwrap();
    scope.assert_clean();
}

#[test]
fn shutdown_reaps_the_server_removes_the_socket_and_later_calls_fail() {
    let mut scope = Scope::new();
    let mut m = start(&mut scope);
    let (dir, socket) = (m.dir().to_path_buf(), m.address().to_path_buf());
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o700
    );
    let l = m.list(vec![]).unwrap();
    m.shutdown().unwrap();
    assert!(!socket.exists() && !dir.exists(), "{dir:?} left behind");
    assert!(matches!(l.append(1), Err(Error::Closed(_))));
    let e = Client::connect(&socket, m.authkey(), Duration::from_secs(1)).unwrap_err();
    assert!(e.to_string().contains("shut down or died"), "{e}");
    scope.assert_clean();
}

/// Someone removed the socket and its folder before the shutdown: nothing is
/// left to remove, and that is not an error.
#[test]
fn shutdown_after_the_folder_was_removed_by_someone_else_is_fine() {
    let mut scope = Scope::new();
    let mut m = start(&mut scope);
    std::fs::remove_file(m.address()).unwrap();
    std::fs::remove_dir(m.dir()).unwrap();
    m.shutdown().unwrap();
    scope.assert_clean();
}

#[test]
fn a_killed_server_is_an_error_at_once_not_a_hang() {
    let mut scope = Scope::new();
    let mut m = start(&mut scope);
    let dir = m.dir().to_path_buf();
    let ns = m.namespace().unwrap();
    ipckit::process::send_signal(m.server_pid().unwrap(), Signal::SIGKILL).unwrap();
    let t = Instant::now();
    let e = ns.get("x").unwrap_err();
    assert!(matches!(e, Error::Died(_)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
    let e = m.shutdown().unwrap_err();
    assert!(e.to_string().contains("signal 9"), "{e}");
    assert!(!dir.exists());
    scope.assert_clean();
}

#[test]
fn a_program_that_is_not_ipckit_is_refused_and_cleaned_up() {
    let parent = std::env::temp_dir().join(format!("ipckit-test-notipckit-{}", std::process::id()));
    std::fs::create_dir(&parent).unwrap();
    let cfg = ManagerConfig {
        program: Some("/bin/cat".into()),
        parent_dir: Some(parent.clone()),
        ..config()
    };
    let e = Manager::start(&cfg)
        .err()
        .expect("cat is no manager server");
    assert!(e.to_string().contains("cannot serve a manager"), "{e}");
    // The refused server was reaped: no `cat` child of ours, alive or zombie.
    #[cfg(target_os = "linux")]
    {
        let me = std::process::id() as i32;
        let table = ipckit::audit::procfs::snapshot();
        let cats: Vec<_> = table
            .values()
            .filter(|p| p.ppid == me && p.comm == "cat")
            .collect();
        assert!(
            cats.is_empty(),
            "the refused server was never reaped: {cats:?}"
        );
    }
    // remove_dir fails unless the private directory inside was removed.
    std::fs::remove_dir(&parent).expect("the private directory was left behind");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 4, ..Default::default() })]
    #[test]
    fn k_processes_of_atomic_updates_reach_the_exact_total(procs in 1usize..5, adds in 1usize..40) {
        let (k, n) = (procs.to_string(), adds.to_string());
        let run = audited_cmd(&[ipckit(), "__internal", "manager-adders", "--procs", &k, "--adds", &n]);
        run.assert_clean();
        proptest::prop_assert_eq!(run.lines(), vec![(procs * adds).to_string()]);
    }
}

/// `l[i] = v` and `del l[i]`, `del d[k]` and `d.items()`, `del ns.x`: each
/// changes (or reads) the object in the server, as another client sees.
#[test]
fn set_remove_and_items_act_on_the_objects_in_the_server() {
    let mut scope = Scope::new();
    let mut m = start(&mut scope);
    let l = m.list(vec![1.into(), 2.into(), 3.into()]).unwrap();
    l.set(2, 30).unwrap();
    l.remove(0).unwrap();
    assert_eq!(l.to_vec().unwrap(), vec![2.into(), 30.into()]);
    let d = m
        .dict(vec![("a".into(), 1.into()), ("b".into(), 2.into())])
        .unwrap();
    d.remove("a").unwrap();
    d.set("b", 20).unwrap();
    assert_eq!(
        d.items().unwrap(),
        vec![("b".into(), 20.into())],
        "a key once"
    );
    let ns = m.namespace().unwrap();
    ns.set("x", 1).unwrap();
    ns.remove("x").unwrap();
    assert!(ns.get("x").is_err(), "x is gone from the namespace");
    let client = format!("{:?}", m.connect().unwrap());
    assert!(client.starts_with("Client { address: "), "{client}");
    m.shutdown().unwrap();
    scope.assert_clean();
}

/// A server that stops answering (stopped with `SIGSTOP`) is a timeout of the
/// call, not a dead server; once resumed it answers again.
#[test]
fn a_stopped_server_is_a_timeout_not_a_death() {
    let mut scope = Scope::new();
    let mut m = Manager::start(&ManagerConfig {
        timeout: Duration::from_millis(300),
        ..config()
    })
    .unwrap();
    let server = m.server_pid().unwrap();
    scope.track(server);
    let l = m.list(vec![]).unwrap();
    nix::sys::signal::kill(server, nix::sys::signal::Signal::SIGSTOP).unwrap();
    // The stop is asynchronous: wait until /proc shows the server stopped.
    let start = Instant::now();
    while ipckit::process::state_of(server).unwrap() != Some('T') {
        assert!(start.elapsed() < Duration::from_secs(10), "never stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
    let e = l.append(1).unwrap_err();
    nix::sys::signal::kill(server, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    m.shutdown().unwrap();
    scope.assert_clean();
}

/// The server's standard input is its owner's lifeline: when it closes (the
/// owner died without a shutdown), the server exits at once, by itself.
#[test]
#[allow(
    clippy::zombie_processes,
    reason = "reaped by pid with wait_exit_timeout"
)]
fn the_server_exits_by_itself_when_its_lifeline_closes() {
    use std::io::{Read, Write};
    let mut scope = Scope::new();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s");
    let mut server = std::process::Command::new(ipckit())
        .args(["__internal", "manager-server", "--socket"])
        .arg(&socket)
        .env(ipckit::manager::SERVE_ENV, &socket)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(server.id() as i32);
    scope.track(pid);
    let mut lifeline = server.stdin.take().unwrap();
    writeln!(lifeline, "{}", AuthKey::random().unwrap().to_hex()).unwrap();
    let mut ready = [0u8; 21];
    server
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut ready)
        .unwrap();
    assert_eq!(&ready, b"ipckit-manager ready\n");
    drop(lifeline);
    let status = ipckit::process::wait_exit_timeout(pid, Duration::from_secs(10)).unwrap();
    if status.is_none() {
        let _ = server.kill();
        let _ = server.wait();
    }
    assert_eq!(status, Some(ipckit::process::ExitStatus::Exited(0)));
    scope.assert_clean();
}
