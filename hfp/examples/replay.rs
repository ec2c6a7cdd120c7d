//! Replays a transcript against the engine: `cargo run -p codriver-hfp --example replay -- [--lenient] FILE`.
//!
//! Prints every event as its canonical line (and `sent`/`auto` lines for transmissions) and
//! exits with status 1 at the first mismatch, naming the transcript file and line.

use std::path::PathBuf;
use std::process::ExitCode;

use codriver_hfp::transcript::{RunOptions, Transcript};

fn main() -> ExitCode {
    let mut lenient = false;
    let mut file = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--lenient" => lenient = true,
            _ if file.is_none() && !arg.starts_with("--") => file = Some(PathBuf::from(arg)),
            _ => return usage(),
        }
    }
    let Some(file) = file else { return usage() };
    let result = Transcript::load(&file).and_then(|t| {
        t.run(
            RunOptions {
                lenient,
                ..RunOptions::default()
            },
            &mut |line| println!("{line}"),
        )
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(mismatch) => {
            eprintln!("mismatch: {mismatch}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: replay [--lenient] FILE");
    ExitCode::from(2)
}
