//! Runs every transcript under `tests/transcripts/` whole, byte by byte and in random pieces;
//! all deliveries must pass and report the same events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.

use std::path::PathBuf;

use codriver_hfp::transcript::{Outcome, RunOptions, Split, Transcript};
use proptest::prelude::*;

fn transcripts() -> Vec<(PathBuf, Transcript)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 10,
        "transcripts missing in {}",
        dir.display()
    );
    paths
        .into_iter()
        .map(|p| {
            let t = Transcript::load(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, t)
        })
        .collect()
}

fn run(t: &Transcript, split: Split) -> Outcome {
    t.run(
        RunOptions {
            lenient: false,
            split,
        },
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{split:?}: {e}"))
}

#[test]
fn every_transcript_passes_whole_and_fragmented() {
    for (path, t) in transcripts() {
        let whole = run(&t, Split::Whole);
        assert!(!whole.events.is_empty(), "{}: no events", path.display());
        for split in [
            Split::Bytes,
            Split::Random { seed: 1, max: 3 },
            Split::Random { seed: 7, max: 16 },
            Split::Random {
                seed: 0xdead_beef,
                max: 64,
            },
        ] {
            assert_eq!(
                run(&t, split).events,
                whole.events,
                "{} {split:?}",
                path.display()
            );
        }
    }
}

#[test]
fn lenient_mode_accepts_every_strict_transcript() {
    for (_, t) in transcripts() {
        t.run(
            RunOptions {
                lenient: true,
                split: Split::Whole,
            },
            &mut |_| {},
        )
        .unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any fragmentation of a transcript's input yields the same events.
    #[test]
    fn fragmentation_does_not_change_events(pick in 0usize..1000, seed in any::<u64>(), max in 1usize..40) {
        let all = transcripts();
        let (path, t) = &all[pick % all.len()];
        let whole = run(t, Split::Whole);
        let split = t.run(RunOptions { lenient: false, split: Split::Random { seed, max } }, &mut |_| {});
        let split = split.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(split.events, whole.events, "{}", path.display());
    }
}
