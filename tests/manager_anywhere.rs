//! A Manager from any program: this test binary has a `main` of its own, as
//! a student's program would, and starts a Manager with the default
//! configuration, whose server is this very binary (never the `ipckit` one).
//! It runs `examples/manager_anywhere.rs` itself.

#[path = "../examples/manager_anywhere.rs"]
#[allow(dead_code)]
mod example;

use ipckit::audit::Scope;
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    // Exactly what the example's main does first: when Manager::start
    // launched this binary to serve, serve and exit.
    ipckit::manager::serve_if_asked();
    let trials = vec![
        Trial::test(
            "the_example_starts_a_manager_served_by_its_own_binary",
            the_example_starts_a_manager_served_by_its_own_binary,
        ),
        Trial::test(
            "without_serve_if_asked_the_error_says_what_to_call",
            without_serve_if_asked_the_error_says_what_to_call,
        ),
    ];
    // One at a time: the first trial checks that this process has no child.
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    libtest_mimic::run(&args, trials).exit();
}

fn the_example_starts_a_manager_served_by_its_own_binary() -> Result<(), Failed> {
    let scope = Scope::new();
    let lines = example::run()?;
    assert_eq!(
        lines,
        [
            "records ['Computers', 'History', 'Hindi']",
            "Namespace(x=6, y=10)"
        ]
    );
    // Shut down: the server was reaped (the shutdown reports otherwise), and
    // this binary has no child left, zombie or alive.
    scope.assert_clean();
    #[cfg(target_os = "linux")] // /proc is Linux's; the Scope above holds elsewhere
    {
        let me = std::process::id() as i32;
        let children: Vec<_> = ipckit::audit::procfs::snapshot()
            .into_values()
            .filter(|p| p.ppid == me)
            .collect();
        assert!(children.is_empty(), "left children: {children:?}");
    }
    Ok(())
}

/// A program that does not call `serve_if_asked` is told so, instead of
/// starting itself again and again.
fn without_serve_if_asked_the_error_says_what_to_call() -> Result<(), Failed> {
    let cfg = ipckit::manager::ManagerConfig {
        program: Some("/bin/true".into()),
        ..Default::default()
    };
    let err = ipckit::manager::Manager::start(&cfg)
        .err()
        .ok_or("/bin/true served")?;
    let why = err.to_string();
    assert!(why.contains("serve_if_asked()"), "{why}");
    Ok(())
}
