//! `cargo bench`: every benchmark of `ipckit::bench` (`cargo bench -- NAME`
//! runs one), printed as `ipckit bench` prints them.

fn main() {
    // cargo passes `--bench`; the first other argument names a benchmark.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let opts = ipckit::bench::Options {
        only,
        quick: false,
        ipckit: Some(env!("CARGO_BIN_EXE_ipckit").into()),
    };
    match ipckit::bench::run(&opts) {
        Ok(report) => print!("{}", report.to_text()),
        Err(e) => {
            eprintln!("ipckit bench: {e}");
            std::process::exit(1);
        }
    }
}
