//! Spoken announcements: a text-to-speech program (espeak-ng by default) run as a separate
//! program, not linked (espeak-ng is GPL), printing a WAV on stdout. Used for voice and text
//! messages and for announcing callers. The program is bounded in time and output, and any
//! failure is an error the caller logs and falls back from (chime only).

use std::process::Stdio;

use codriver_hal::PcmFormat;
use tokio::io::AsyncReadExt;

/// Largest WAV the program may print (a sentence is ~100 KB).
const MAX_TTS_BYTES: u64 = 4 << 20;

/// The longest the program may take.
const TTS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the text-to-speech program `command` (a program and its arguments) on `text` and
/// reads the WAV it prints.
pub(crate) async fn synthesize(command: &str, text: &str) -> Result<(PcmFormat, Vec<i16>), String> {
    let mut parts = command.split_whitespace();
    let program = parts.next().ok_or("tts_command is empty")?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(parts);
    // espeak-ng and espeak write WAV to stdout only when asked; other programs get the
    // command line as configured.
    let name = std::path::Path::new(program).file_name();
    if name.is_some_and(|n| n == "espeak-ng" || n == "espeak") && !command.contains("--stdout") {
        cmd.arg("--stdout");
    }
    cmd.arg(text)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // Dropping `child` (on timeout or error) kills the program.
    let mut child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
    let run = async {
        let mut wav = Vec::new();
        if let Some(out) = child.stdout.take() {
            out.take(MAX_TTS_BYTES)
                .read_to_end(&mut wav)
                .await
                .map_err(|e| format!("{program}: {e}"))?;
        }
        if wav.len() as u64 >= MAX_TTS_BYTES {
            return Err(format!("{program} printed more than {MAX_TTS_BYTES} bytes"));
        }
        let status = child.wait().await.map_err(|e| format!("{program}: {e}"))?;
        Ok((wav, status))
    };
    let (wav, status) = tokio::time::timeout(TTS_TIMEOUT, run)
        .await
        .map_err(|_| format!("{program} took longer than {TTS_TIMEOUT:?}"))??;
    if !status.success() {
        return Err(format!("{program} exited with {status}"));
    }
    parse_wav(&wav).ok_or_else(|| format!("{program} printed no 16-bit PCM WAV"))
}

/// Reads a 16-bit PCM WAV leniently: streaming writers (espeak-ng --stdout) leave the RIFF
/// and data sizes unset, so the data runs to the end of the bytes.
fn parse_wav(wav: &[u8]) -> Option<(PcmFormat, Vec<i16>)> {
    if wav.len() < 12 || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut format = None;
    while pos + 8 <= wav.len() {
        let id = &wav[pos..pos + 4];
        let len = u32::from_le_bytes([wav[pos + 4], wav[pos + 5], wav[pos + 6], wav[pos + 7]]);
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= wav.len() {
            let channels = u16::from_le_bytes([wav[body + 2], wav[body + 3]]);
            let rate =
                u32::from_le_bytes([wav[body + 4], wav[body + 5], wav[body + 6], wav[body + 7]]);
            let bits = u16::from_le_bytes([wav[body + 14], wav[body + 15]]);
            if bits != 16 || channels == 0 || rate == 0 {
                return None;
            }
            format = Some(PcmFormat {
                sample_rate: rate,
                channels,
            });
        } else if id == b"data" {
            let end = body.saturating_add(len as usize).min(wav.len());
            let samples = wav[body..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return Some((format?, samples));
        }
        pos = body.saturating_add(len as usize + (len as usize & 1));
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn streaming_wav() -> Vec<u8> {
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF\xff\xff\xff\xffWAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&22_050u32.to_le_bytes());
        wav.extend_from_slice(&44_100u32.to_le_bytes());
        wav.extend_from_slice(&2u16.to_le_bytes());
        wav.extend_from_slice(&16u16.to_le_bytes());
        wav.extend_from_slice(b"data\xff\xff\xff\xff");
        wav.extend_from_slice(&[1, 0, 2, 0, 3]);
        wav
    }

    #[test]
    fn streaming_wav_with_unset_sizes_is_read() {
        let (f, s) = parse_wav(&streaming_wav()).unwrap();
        assert_eq!(f.sample_rate, 22_050);
        assert_eq!(s, [1, 2]);
        assert!(parse_wav(b"nonsense").is_none());
    }

    #[tokio::test]
    async fn a_missing_tts_program_is_an_error_not_a_panic() {
        assert!(synthesize("/nonexistent/espeak-ng", "hello").await.is_err());
    }

    #[tokio::test]
    async fn the_program_gets_its_arguments_and_the_text_and_its_wav_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("out.wav");
        std::fs::write(&wav, streaming_wav()).unwrap();
        let args = dir.path().join("args");
        let script = dir.path().join("say");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" > {}\ncat {}\n",
                args.display(),
                wav.display()
            ),
        )
        .unwrap();
        // Run through sh rather than exec'd: a script just written can be "text file busy"
        // while another test thread forks.
        let command = format!("sh {} -v en", script.display());
        let (format, samples) = synthesize(&command, "Call from Alice").await.unwrap();
        assert_eq!(format.sample_rate, 22_050);
        assert_eq!(samples, [1, 2]);
        assert_eq!(
            std::fs::read_to_string(&args).unwrap(),
            "-v en Call from Alice\n"
        );
        // A program that fails is an error too.
        assert!(synthesize("false", "x").await.is_err());
    }
}
