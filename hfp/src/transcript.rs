//! Text transcripts of a conversation with a phone, and a runner that checks the engine
//! against them. The format is described in the crate README; in short:
//!
//! ```text
//! # comment
//! CONFIG: codecs=cvsd,msbc          (before anything else; see README for keys)
//! HF: AT+BRSF=1023                  the engine must send this next (`*` at the end: prefix)
//! AG: \r\n+BRSF: 1023\r\n\r\nOK\r\n the phone sends these bytes (\r \n \\ \xNN escapes)
//! ON: AT+CLCC => \r\nOK\r\n         standing answer to unclaimed lines with this prefix
//! CMD: dial 5550100                 a command from the car's software
//! TIME: +5s                         the clock advances, firing timeouts on the way
//! EVENT: call 1 dialing 5550100     an event the engine must report (prefix of its line)
//! ```
//!
//! The runner works in blocks: an action (`AG:`, `CMD:`, `TIME:`, or the implicit
//! [`HandsFree::start`] at the top) with the `HF:`, `EVENT:` and `ON:` lines after it. An `ON:`
//! rule applies to the actions after it (rules above the first action also to `start()`).
//! The action runs and the engine is drained until quiet:
//! every line it sends is claimed by the block's next unclaimed `HF:` line if that matches,
//! else answered by the last matching `ON:` rule (printed `auto <line>`), else (lenient mode
//! only) answered with `\r\nOK\r\n`; answers are fed back. Then the block's `EVENT:` lines are
//! matched. In strict mode every transmission must be claimed or answered by a rule, and every
//! event must be asserted, in order, in the block that produced it. In lenient mode an `EVENT:`
//! matches the first not yet matched event so far that starts with its text, and other events
//! are allowed. In both modes every `HF:` and `EVENT:` line must match.

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{AppleAccessory, Chld, Codec, HandsFree, HfConfig, HfFeatures};

/// A parsed transcript.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// Names of the file and its includes, for error messages.
    files: Vec<String>,
    /// Engine configuration from `CONFIG:` lines.
    config: HfConfig,
    /// `CONFIG: mode=lenient` was given.
    lenient: bool,
    lines: Vec<Line>,
}

/// How the runner delivers each `AG:` line (and automatic answers) to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// In one `handle_input` call.
    Whole,
    /// One byte per call.
    Bytes,
    /// Pseudo-random pieces of 1 to `max` bytes, from `seed`.
    Random {
        /// Seed of the piece sizes.
        seed: u64,
        /// Largest piece.
        max: usize,
    },
}

/// Options for [`Transcript::run`].
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Lenient matching (also enabled by `CONFIG: mode=lenient` in the file).
    pub lenient: bool,
    /// Fragmentation of input.
    pub split: Split,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            lenient: false,
            split: Split::Whole,
        }
    }
}

/// A transcript that could not be read or parsed, or that the engine did not follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct Mismatch {
    /// Transcript file name.
    pub file: String,
    /// 1-based line number (0 for the file as a whole).
    pub line: usize,
    /// What went wrong.
    pub message: String,
}

/// What a successful run printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every printed line: events, `sent <line>`, `auto <line>`, `cmd-error <reason>`.
    pub log: Vec<String>,
    /// Only the events' canonical lines (including `cmd-error <reason>` for refused commands).
    pub events: Vec<String>,
}

#[derive(Debug, Clone)]
struct Line {
    /// Index into `Transcript::files`.
    file: usize,
    number: usize,
    kind: Kind,
}

impl Line {
    const fn pos(&self) -> Pos {
        Pos {
            file: self.file,
            line: self.number,
        }
    }
}

/// Where a transcript line is: file index and 1-based line number.
#[derive(Debug, Clone, Copy, Default)]
struct Pos {
    file: usize,
    line: usize,
}

#[derive(Debug, Clone)]
enum Kind {
    Ag(Vec<u8>),
    Hf(String),
    Cmd(String),
    Time(Duration),
    Event(String),
    On(String, Vec<u8>),
}

impl Kind {
    const fn is_action(&self) -> bool {
        matches!(self, Self::Ag(_) | Self::Cmd(_) | Self::Time(_))
    }
}

impl Transcript {
    /// Reads and parses a transcript file; `INCLUDE:` paths are relative to its directory.
    pub fn load(path: &Path) -> Result<Self, Mismatch> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Mismatch {
            file: name.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        let mut t = Self::empty();
        t.parse_into(&name, &text, path.parent(), 0)?;
        Ok(t)
    }

    /// Parses transcript text; `name` is used in error messages. `INCLUDE:` is not available.
    pub fn parse(name: &str, text: &str) -> Result<Self, Mismatch> {
        let mut t = Self::empty();
        t.parse_into(name, text, None, 0)?;
        Ok(t)
    }

    fn empty() -> Self {
        Self {
            files: Vec::new(),
            config: HfConfig::default(),
            lenient: false,
            lines: Vec::new(),
        }
    }

    fn parse_into(
        &mut self,
        name: &str,
        text: &str,
        dir: Option<&Path>,
        depth: usize,
    ) -> Result<(), Mismatch> {
        let file = self.files.len();
        self.files.push(name.to_owned());
        for (i, raw) in text.lines().enumerate() {
            let number = i + 1;
            let err = |message: String| Mismatch {
                file: name.to_owned(),
                line: number,
                message,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((tag, rest)) = line.split_once(':') else {
                return Err(err(format!("expected `TAG: ...`, got {line:?}")));
            };
            let rest = rest.trim();
            let kind = match tag {
                "AG" => Kind::Ag(unescape(rest).map_err(err)?),
                "HF" => {
                    Kind::Hf(String::from_utf8_lossy(&unescape(rest).map_err(err)?).into_owned())
                }
                "CMD" => Kind::Cmd(rest.to_owned()),
                "EVENT" => Kind::Event(rest.to_owned()),
                "TIME" => Kind::Time(
                    parse_duration(rest).ok_or_else(|| err(format!("bad time {rest:?}")))?,
                ),
                "ON" => {
                    let Some((prefix, answer)) = rest.split_once("=>") else {
                        return Err(err("expected `ON: <prefix> => <bytes>`".into()));
                    };
                    let prefix = String::from_utf8_lossy(&unescape(prefix.trim()).map_err(err)?)
                        .into_owned();
                    Kind::On(prefix, unescape(answer.trim()).map_err(err)?)
                }
                "CONFIG" => {
                    if !self.lines.is_empty() {
                        return Err(err("CONFIG: must come before other lines".into()));
                    }
                    self.configure(rest).map_err(err)?;
                    continue;
                }
                "INCLUDE" => {
                    let Some(dir) = dir else {
                        return Err(err("INCLUDE: needs a transcript loaded from a file".into()));
                    };
                    if depth >= 4 {
                        return Err(err("INCLUDE: nested too deeply".into()));
                    }
                    let path = dir.join(rest);
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| err(format!("{}: {e}", path.display())))?;
                    self.parse_into(&path.display().to_string(), &text, path.parent(), depth + 1)?;
                    continue;
                }
                _ => return Err(err(format!("unknown tag {tag:?}"))),
            };
            self.lines.push(Line { file, number, kind });
        }
        Ok(())
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &HfConfig {
        &self.config
    }

    /// All bytes the phone sends (`AG:` lines) concatenated, e.g. as a fuzzing seed.
    pub fn ag_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            if let Kind::Ag(bytes) = &line.kind {
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// Runs the transcript against a fresh engine, calling `print` with every output line.
    pub fn run(
        &self,
        options: RunOptions,
        print: &mut dyn FnMut(&str),
    ) -> Result<Outcome, Mismatch> {
        let mut runner = Runner {
            t: self,
            lenient: options.lenient || self.lenient,
            split: options.split,
            rng: match options.split {
                Split::Random { seed, .. } => seed | 1,
                _ => 1,
            },
            hf: HandsFree::new(self.config.clone()),
            now: Instant::now(),
            rules: Vec::new(),
            expect_hf: VecDeque::new(),
            pending: VecDeque::new(),
            seen: Vec::new(),
            outcome: Outcome::default(),
            print,
        };
        runner.run()
    }

    fn configure(&mut self, setting: &str) -> Result<(), String> {
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {setting:?}"))?;
        let (key, value) = (key.trim(), value.trim());
        let bad = || format!("bad value {value:?} for {key}");
        let c = &mut self.config;
        match key {
            "mode" => self.lenient = value == "lenient",
            "features" => c.features = HfFeatures(parse_u32(value).ok_or_else(bad)?),
            "codecs" => {
                c.codecs = value
                    .split(',')
                    .map(|s| Codec::from_name(s.trim()))
                    .collect::<Option<_>>()
                    .ok_or_else(bad)?;
            }
            "echo-cancelling" => c.echo_cancelling = value == "on",
            "timeout" => c.command_timeout = parse_duration(value).ok_or_else(bad)?,
            "hf-indicators" => {
                c.hf_indicators = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.trim().parse().ok())
                    .collect::<Option<_>>()
                    .ok_or_else(bad)?;
            }
            "max-line" => c.max_line_len = value.parse().map_err(|_| bad())?,
            "apple" => {
                // VVVV-PPPP-RRRR,features (hex ids, decimal features)
                let (ids, features) = value.split_once(',').ok_or_else(bad)?;
                let ids: Vec<u16> = ids
                    .split('-')
                    .map(|s| u16::from_str_radix(s, 16).ok())
                    .collect::<Option<_>>()
                    .ok_or_else(bad)?;
                let [vendor_id, product_id, version] = ids[..] else {
                    return Err(bad());
                };
                let features = parse_u32(features).ok_or_else(bad)?;
                c.apple = Some(AppleAccessory {
                    vendor_id,
                    product_id,
                    version,
                    features,
                });
            }
            _ => return Err(format!("unknown CONFIG key {key:?}")),
        }
        Ok(())
    }
}

/// Engine plus matching state for one run.
struct Runner<'a> {
    t: &'a Transcript,
    lenient: bool,
    split: Split,
    rng: u64,
    hf: HandsFree,
    now: Instant,
    rules: Vec<(String, Vec<u8>)>,
    /// `HF:` lines of the current block not yet claimed: (line number, text).
    expect_hf: VecDeque<(Pos, String)>,
    /// Strict mode: events not yet asserted.
    pending: VecDeque<String>,
    /// Lenient mode: every event so far and whether an `EVENT:` line matched it.
    seen: Vec<(String, bool)>,
    outcome: Outcome,
    print: &'a mut dyn FnMut(&str),
}

impl Runner<'_> {
    fn run(&mut self) -> Result<Outcome, Mismatch> {
        let lines = &self.t.lines;
        let mut i = 0;
        let mut first = true;
        while first || i < lines.len() {
            // A block: an action (or the implicit start) and the expectation lines after it.
            let action = if first { None } else { lines.get(i) };
            let start = if first { i } else { i + 1 };
            let end = lines[start..]
                .iter()
                .position(|l| l.kind.is_action())
                .map_or(lines.len(), |p| start + p);
            let block = &lines[start..end];
            let at = action.or(block.first()).map_or(Pos::default(), Line::pos);
            if !self.lenient
                && let Some(ev) = self.pending.front()
            {
                return Err(self.mismatch(at, format!("unexpected event `{ev}` before this line")));
            }
            for l in block {
                match &l.kind {
                    // Rules above the first action also answer what start() sends.
                    Kind::On(prefix, answer) if first => {
                        self.rules.push((prefix.clone(), answer.clone()));
                    }
                    Kind::Hf(text) => self.expect_hf.push_back((l.pos(), text.clone())),
                    _ => {}
                }
            }
            match action.map(|l| &l.kind) {
                None => self.hf.start(self.now),
                Some(Kind::Ag(bytes)) => self.feed(&bytes.clone()),
                Some(Kind::Cmd(cmd)) => self.command(at, cmd)?,
                Some(Kind::Time(d)) => {
                    let target = self.now + *d;
                    while let Some(deadline) = self.hf.poll_timeout().filter(|&t| t <= target) {
                        self.now = self.now.max(deadline);
                        self.hf.handle_timeout(self.now);
                        self.drain(at)?;
                    }
                    self.now = target;
                    self.hf.handle_timeout(self.now);
                }
                Some(_) => {}
            }
            self.drain(at)?;
            if let Some((line, text)) = self.expect_hf.pop_front() {
                return Err(
                    self.mismatch(line, format!("expected HF: {text}, engine sent nothing"))
                );
            }
            for l in block {
                match &l.kind {
                    Kind::Event(text) => self.match_event(l.pos(), text)?,
                    // An ON: rule applies to the actions after it.
                    Kind::On(prefix, answer) if !first => {
                        self.rules.push((prefix.clone(), answer.clone()));
                    }
                    _ => {}
                }
            }
            first = false;
            i = end;
        }
        if let Some(ev) = self.pending.front() {
            let last = lines.last().map_or(Pos::default(), Line::pos);
            return Err(self.mismatch(
                last,
                format!("unexpected event `{ev}` at end of transcript"),
            ));
        }
        Ok(std::mem::take(&mut self.outcome))
    }

    fn mismatch(&self, at: Pos, message: String) -> Mismatch {
        let file = self.t.files.get(at.file).cloned().unwrap_or_default();
        Mismatch {
            file,
            line: at.line,
            message,
        }
    }

    fn emit(&mut self, line: String) {
        (self.print)(&line);
        self.outcome.log.push(line);
    }

    fn event(&mut self, line: String) {
        self.emit(line.clone());
        self.outcome.events.push(line.clone());
        if self.lenient {
            self.seen.push((line, false));
        } else {
            self.pending.push_back(line);
        }
    }

    fn match_event(&mut self, number: Pos, text: &str) -> Result<(), Mismatch> {
        if self.lenient {
            match self
                .seen
                .iter_mut()
                .find(|(e, matched)| !matched && e.starts_with(text))
            {
                Some(entry) => entry.1 = true,
                None => {
                    return Err(
                        self.mismatch(number, format!("expected event `{text}`, not reported"))
                    );
                }
            }
            return Ok(());
        }
        match self.pending.pop_front() {
            Some(ev) if ev.starts_with(text) => Ok(()),
            Some(ev) => Err(self.mismatch(number, format!("expected event `{text}`, got `{ev}`"))),
            None => Err(self.mismatch(number, format!("expected event `{text}`, got nothing"))),
        }
    }

    fn command(&mut self, at: Pos, cmd: &str) -> Result<(), Mismatch> {
        let (verb, arg) = cmd
            .split_once(' ')
            .map_or((cmd, ""), |(v, a)| (v, a.trim()));
        let now = self.now;
        let bad_command = self.mismatch(at, format!("bad command {cmd:?}"));
        let bad = || bad_command.clone();
        let num = |s: &str| s.parse::<u8>().map_err(|_| bad());
        let hf = &mut self.hf;
        let result = match verb {
            "answer" => hf.answer(now),
            "hangup" => hf.hangup(now),
            "dial" => hf.dial(now, arg),
            "redial" => hf.redial(now),
            "memdial" => hf.memory_dial(now, arg.parse().map_err(|_| bad())?),
            "dtmf" => hf.send_dtmf(now, arg.chars().next().ok_or_else(bad)?),
            "chld" => hf.hold(now, Chld::parse(arg).ok_or_else(bad)?),
            "bvra" => hf.set_voice_recognition(now, arg == "on"),
            "vgs" => hf.set_speaker_volume(now, num(arg)?),
            "vgm" => hf.set_mic_volume(now, num(arg)?),
            "bcc" => hf.connect_codec(now),
            "cops" => hf.query_operator(now),
            "cnum" => hf.query_subscriber_number(now),
            "clcc" => hf.query_calls(now),
            "battery" => hf.set_battery_level(now, num(arg)?),
            _ => return Err(bad()),
        };
        if let Err(e) = result {
            self.event(format!("cmd-error {e}"));
        }
        Ok(())
    }

    /// Delivers bytes according to the split strategy.
    fn feed(&mut self, bytes: &[u8]) {
        match self.split {
            Split::Whole => self.hf.handle_input(self.now, bytes),
            Split::Bytes => bytes
                .chunks(1)
                .for_each(|b| self.hf.handle_input(self.now, b)),
            Split::Random { max, .. } => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    // xorshift64
                    self.rng ^= self.rng << 13;
                    self.rng ^= self.rng >> 7;
                    self.rng ^= self.rng << 17;
                    let n = usize::try_from(self.rng % max.max(1) as u64).unwrap_or(0) + 1;
                    let (piece, tail) = rest.split_at(n.min(rest.len()));
                    self.hf.handle_input(self.now, piece);
                    rest = tail;
                }
            }
        }
    }

    /// Drains transmissions and events until the engine is quiet.
    fn drain(&mut self, at: Pos) -> Result<(), Mismatch> {
        for _ in 0..10_000 {
            let mut busy = false;
            while let Some(tx) = self.hf.poll_transmit() {
                busy = true;
                let text = String::from_utf8_lossy(&tx);
                let text = text.strip_suffix('\r').unwrap_or(&text).to_owned();
                if self
                    .expect_hf
                    .front()
                    .is_some_and(|(_, want)| hf_matches(want, &text))
                {
                    self.expect_hf.pop_front();
                    self.emit(format!("sent {text}"));
                    continue;
                }
                // The longest matching prefix wins; for equal prefixes, the last rule.
                let rule = self
                    .rules
                    .iter()
                    .enumerate()
                    .filter(|(_, (prefix, _))| text.starts_with(prefix.as_str()))
                    .max_by_key(|(i, (prefix, _))| (prefix.len(), *i))
                    .map(|(_, rule)| rule);
                let answer = match rule {
                    Some((_, answer)) => answer.clone(),
                    None if self.lenient => b"\r\nOK\r\n".to_vec(),
                    None => {
                        let (line, want) = self
                            .expect_hf
                            .front()
                            .map_or((at, "nothing"), |(l, w)| (*l, w.as_str()));
                        return Err(
                            self.mismatch(line, format!("engine sent {text}, expected {want}"))
                        );
                    }
                };
                self.emit(format!("auto {text}"));
                self.feed(&answer);
            }
            while let Some(ev) = self.hf.poll_event() {
                busy = true;
                self.event(ev.to_string());
            }
            if !busy {
                return Ok(());
            }
        }
        Err(self.mismatch(at, "engine never went quiet (answer loop?)".into()))
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.files.first().map_or("", String::as_str))
    }
}

/// `HF:` text matches a sent line exactly, or as a prefix when it ends with `*`.
fn hf_matches(want: &str, sent: &str) -> bool {
    let want = want.strip_suffix('\r').unwrap_or(want);
    match want.strip_suffix('*') {
        Some(prefix) => sent.starts_with(prefix),
        None => want == sent,
    }
}

/// Decodes `\r`, `\n`, `\\`, `\xNN`.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).map_err(|e| e.to_string())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape \\x{hex}"))?);
            }
            other => return Err(format!("bad escape \\{}", other.map_or('?', char::from))),
        }
    }
    Ok(out)
}

/// `+500ms`, `5s`, `+2s`.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim().trim_start_matches('+');
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    s.strip_suffix('s')?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes() {
        assert_eq!(unescape(r"a\r\n\\\x41").unwrap(), b"a\r\n\\A");
        assert!(unescape(r"\q").is_err());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("+500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("+5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), None);
    }

    #[test]
    fn prefix_matching() {
        assert!(hf_matches("AT+BRSF=*", "AT+BRSF=1023"));
        assert!(hf_matches("ATA", "ATA"));
        assert!(!hf_matches("ATA", "ATA;"));
    }

    #[test]
    fn reports_file_and_line() {
        let err = Transcript::parse("x.txt", "HF: AT+BRSF=1\nAG: \\q").unwrap_err();
        assert_eq!(err.to_string(), "x.txt:2: bad escape \\q");
        let t = Transcript::parse("y.txt", "HF: AT+BAC=1\n").unwrap();
        let err = t.run(RunOptions::default(), &mut |_| {}).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("engine sent AT+BRSF=1023"), "{err}");
    }
}
