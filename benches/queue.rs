//! `cargo bench --bench queue`: the Queue side by side with a raw pipe and
//! Python's multiprocessing.Queue (see `ipckit::bench::queue`).

fn main() {
    if let Err(e) = ipckit::bench::queue::run(ipckit::bench::queue::Sizes::default()) {
        eprintln!("queue benchmark failed: {e}");
        std::process::exit(1);
    }
}
