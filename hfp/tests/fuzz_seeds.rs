//! Runs the committed fuzz seed corpus (and every transcript's phone bytes) through the same
//! driver as the fuzz target, on stable, so no seed can ever panic the engine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.

use std::path::PathBuf;

use codriver_hfp::transcript::Transcript;

#[path = "../fuzz/drive.rs"]
mod drive;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn transcript_paths() -> Vec<PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(root().join("tests/transcripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn seed_corpus_never_panics() {
    let dir = root().join("fuzz/seeds/input");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        drive::drive(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 5, "seed corpus missing in {}", dir.display());
}

#[test]
fn transcript_bytes_never_panic() {
    for path in transcript_paths() {
        let bytes = Transcript::load(&path).unwrap().ag_bytes();
        drive::drive(&bytes);
        // The same bytes with every piece one byte long.
        let spread: Vec<u8> = bytes.iter().flat_map(|&b| [0, b]).collect();
        drive::drive(&spread);
    }
}

#[test]
fn hostile_inputs_never_panic() {
    drive::drive(&[0xff; 100_000]);
    drive::drive(&[b'+'; 5000]);
    drive::drive(b"\x3f+CIEV: 99999999999999999999,99999999\r\n+CIND: ((((((((\r\n+BCS: 300\r\n");
    drive::drive(&(0..=255u8).cycle().take(20_000).collect::<Vec<_>>());
}

/// Writes the seed corpus from selected transcripts: `cargo test -p codriver-hfp --test
/// fuzz_seeds -- --ignored`.
#[test]
#[ignore = "regenerates hfp/fuzz/seeds/input"]
fn regenerate_seeds() {
    let dir = root().join("fuzz/seeds/input");
    std::fs::create_dir_all(&dir).unwrap();
    for path in transcript_paths() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("hf_slc")
            || name.starts_with("hf_twc")
            || name.starts_with("profile_")
            || name.starts_with("quirk_"))
        {
            continue;
        }
        // The driver reads a control byte before each piece; 63 means "up to 64 bytes, no
        // command", so the seed replays the phone's bytes in 64-byte pieces.
        let bytes = Transcript::load(&path).unwrap().ag_bytes();
        let mut seed = Vec::new();
        for piece in bytes.chunks(64) {
            seed.push(63);
            seed.extend_from_slice(piece);
        }
        std::fs::write(dir.join(name), seed).unwrap();
    }
}
