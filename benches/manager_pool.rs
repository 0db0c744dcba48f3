//! `cargo bench --bench manager_pool`: Manager and Pool side by side with
//! Python's multiprocessing (see `ipckit::bench::manager_pool`).

fn main() {
    let server = Some(env!("CARGO_BIN_EXE_ipckit").into());
    if let Err(e) = ipckit::bench::manager_pool::run(server) {
        eprintln!("manager/pool benchmark failed: {e}");
        std::process::exit(1);
    }
}
