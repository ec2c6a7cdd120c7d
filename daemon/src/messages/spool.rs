//! The crash-safe message spool: a Maildir-style queue on disk.
//!
//! Each message is a directory named after its id (hex-encoded, so any id is a safe file
//! name) holding `meta` (the offer's fields, `key=value` lines) and `body` (the audio, or the
//! UTF-8 text of a text message). It lives in one of three directories:
//!
//! * `tmp/`: being received. `meta` is written and fsync'd first, then every chunk is appended
//!   to `body` and fsync'd before the next, so the length of `body` is always the bytes held
//!   durably: the offset a transfer resumes from after link loss or a restart.
//! * `new/`: complete and not listened to. A message gets here by one `rename` of its
//!   directory from `tmp/`, after which `new/` and `tmp/` are fsync'd: only then is it durable
//!   and only then may it be acknowledged to the phone.
//! * `cur/`: listened to (moved by `rename` from `new/`, directories fsync'd). An empty
//!   `receipted` file inside says the phone was told.
//!
//! A crash at any point leaves each message whole in exactly one directory, or partial in
//! `tmp/`. Opening the spool rescans `new/` and `cur/`, keeps partial transfers in `tmp/` for
//! resume, and removes `tmp/` entries that are unreadable or older than [`TMP_MAX_AGE`].
//!
//! **Retention** (applied on open and after every stored message):
//!
//! 1. a message older than `max_age` (by the time it was received) is deleted, listened or
//!    not, as the `[messages]` configuration documents;
//! 2. then, while there are more than `max_count` messages or more than `max_bytes`, the
//!    oldest **listened** message is deleted; only when no listened message is left is the
//!    oldest unlistened one deleted. The message just stored is never deleted by its own
//!    arrival (an offer larger than `max_bytes` is refused before it is accepted).
//!
//! All of this is blocking `std::fs` code: the daemon calls it through [`SpoolHandle`],
//! which runs every operation on tokio's blocking pool.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use codriver_companion::{Codec, TextMessage, VoiceMessage};

/// Partial transfers in `tmp/` older than this are removed when the spool opens.
pub const TMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// What went wrong in the spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A file system operation failed.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A chunk does not continue the bytes stored (the transfer must restart).
    #[error("message {id}: chunk at offset {offset}, but {stored} bytes are stored")]
    BadOffset {
        /// The message id.
        id: String,
        /// The chunk's offset.
        offset: u64,
        /// Bytes stored durably.
        stored: u64,
    },
    /// No partial transfer with that id.
    #[error("message {0}: no transfer in progress")]
    UnknownMessage(String),
    /// The message can never fit the configured limits.
    #[error("message of {size} bytes exceeds the spool's {max} bytes")]
    TooLarge {
        /// The message size.
        size: u64,
        /// `max_bytes`.
        max: u64,
    },
    /// The blocking task running the operation failed.
    #[error("spool task failed: {0}")]
    Task(String),
}

/// Retention limits, from `[messages]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most messages kept.
    pub max_count: u32,
    /// The most bytes of message bodies kept.
    pub max_bytes: u64,
    /// Older messages are deleted, listened or not.
    pub max_age: Duration,
}

impl Limits {
    /// The limits of a `[messages]` section.
    pub fn from_config(config: &codriver_config::MessagesConfig) -> Self {
        Limits {
            max_count: config.max_count,
            max_bytes: config.max_bytes.bytes(),
            max_age: config.max_age,
        }
    }
}

/// A voice or a text message's fields, as stored in `meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The phone's message id.
    pub id: String,
    /// `voice` or `text`.
    pub kind: Kind,
    /// The sender's id in the messaging app.
    pub sender_id: String,
    /// The sender's display name, for announcements.
    pub sender_name: String,
    /// The conversation id (replies go there).
    pub conversation_id: String,
    /// The conversation's display name.
    pub conversation_name: String,
    /// The audio codec byte (voice), 0 for text.
    pub codec: u8,
    /// Audio duration (voice), 0 for text.
    pub duration_ms: u32,
    /// When the phone received it, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Body size in bytes.
    pub size: u32,
    /// When the car stored it, ms since the Unix epoch; retention by age uses this.
    pub received_ms: u64,
}

/// Whether a message is audio or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A voice message: `body` is audio in `codec`.
    Voice,
    /// A text message: `body` is UTF-8.
    Text,
}

impl Meta {
    /// The fields of a voice offer, received now.
    pub fn voice(m: &VoiceMessage) -> Self {
        Meta {
            id: m.id.clone(),
            kind: Kind::Voice,
            sender_id: m.sender_id.clone(),
            sender_name: m.sender_name.clone(),
            conversation_id: m.conversation_id.clone(),
            conversation_name: m.conversation_name.clone(),
            codec: m.codec.code(),
            duration_ms: m.duration_ms,
            timestamp_ms: m.timestamp_ms,
            size: m.size,
            received_ms: unix_ms(),
        }
    }

    /// The fields of a text message, received now.
    pub fn text(t: &TextMessage) -> Self {
        Meta {
            id: t.id.clone(),
            kind: Kind::Text,
            sender_id: t.sender_id.clone(),
            sender_name: t.sender_name.clone(),
            conversation_id: t.conversation_id.clone(),
            conversation_name: t.conversation_name.clone(),
            codec: 0,
            duration_ms: 0,
            timestamp_ms: t.timestamp_ms,
            size: u32::try_from(t.text.len()).unwrap_or(u32::MAX),
            received_ms: unix_ms(),
        }
    }

    /// The audio codec of a voice message.
    pub fn codec(&self) -> Codec {
        Codec::from_code(self.codec)
    }

    /// True when `other` describes the same transfer (a resumed offer).
    fn same_transfer(&self, other: &Meta) -> bool {
        self.id == other.id
            && self.kind == other.kind
            && self.codec == other.codec
            && self.size == other.size
    }

    fn encode(&self) -> String {
        let kind = match self.kind {
            Kind::Voice => "voice",
            Kind::Text => "text",
        };
        let fields: [(&str, String); 11] = [
            ("id", escape(&self.id)),
            ("kind", kind.to_owned()),
            ("sender_id", escape(&self.sender_id)),
            ("sender_name", escape(&self.sender_name)),
            ("conversation_id", escape(&self.conversation_id)),
            ("conversation_name", escape(&self.conversation_name)),
            ("codec", self.codec.to_string()),
            ("duration_ms", self.duration_ms.to_string()),
            ("timestamp_ms", self.timestamp_ms.to_string()),
            ("size", self.size.to_string()),
            ("received_ms", self.received_ms.to_string()),
        ];
        fields.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    fn decode(text: &str) -> Option<Meta> {
        let mut map = BTreeMap::new();
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            map.insert(k, unescape(v));
        }
        let num = |k: &str| map.get(k)?.parse::<u64>().ok();
        Some(Meta {
            id: map.get("id")?.clone(),
            kind: match map.get("kind")?.as_str() {
                "voice" => Kind::Voice,
                "text" => Kind::Text,
                _ => return None,
            },
            sender_id: map.get("sender_id")?.clone(),
            sender_name: map.get("sender_name")?.clone(),
            conversation_id: map.get("conversation_id")?.clone(),
            conversation_name: map.get("conversation_name")?.clone(),
            codec: u8::try_from(num("codec")?).ok()?,
            duration_ms: u32::try_from(num("duration_ms")?).ok()?,
            timestamp_ms: num("timestamp_ms")?,
            size: u32::try_from(num("size")?).ok()?,
            received_ms: num("received_ms")?,
        })
    }
}

/// What the spool holds for an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Complete (in `new/` or `cur/`): acknowledge again, store nothing.
    Stored {
        /// Already listened to (in `cur/`).
        listened: bool,
    },
    /// Nothing.
    Absent,
}

/// A complete message in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its fields.
    pub meta: Meta,
    /// In `cur/`.
    pub listened: bool,
    /// The phone was told it was listened to.
    pub receipted: bool,
}

/// The spool on disk; blocking. See the module docs for the layout and the rules.
#[derive(Debug)]
pub struct Spool {
    root: PathBuf,
    limits: Limits,
    /// Voice replies waiting for the phone's `REPLY_ACK`.
    outbox: super::outbox::Outbox,
    /// Complete messages by id.
    index: BTreeMap<String, Entry>,
}

impl Spool {
    /// Opens (creating) the spool at `root`: rescans it, cleans `tmp/`, applies retention.
    pub fn open(root: &Path, limits: Limits) -> Result<Spool, SpoolError> {
        for sub in ["tmp", "new", "cur"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        }
        let mut spool = Spool {
            root: root.to_owned(),
            limits,
            outbox: super::outbox::Outbox::open(&root.join("outbox"))?,
            index: BTreeMap::new(),
        };
        spool.clean_tmp()?;
        for (sub, listened) in [("new", false), ("cur", true)] {
            let dir = root.join(sub);
            for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
                let path = entry.map_err(io_at(&dir))?.path();
                let Some(meta) = read_meta(&path) else {
                    tracing::warn!(path = %path.display(), "unreadable message in the spool; removing it");
                    remove(&path)?;
                    continue;
                };
                let receipted = path.join("receipted").exists();
                if listened && spool.index.contains_key(&meta.id) {
                    // A crash between the rename and the directory fsync can leave nothing
                    // behind twice, but be safe: the listened copy wins.
                    remove(&root.join("new").join(dir_name(&meta.id)))?;
                }
                spool.index.insert(
                    meta.id.clone(),
                    Entry {
                        meta,
                        listened,
                        receipted,
                    },
                );
            }
        }
        spool.retain(None)?;
        Ok(spool)
    }

    /// Whether `id` is stored complete.
    pub fn lookup(&self, id: &str) -> Lookup {
        match self.index.get(id) {
            Some(e) => Lookup::Stored {
                listened: e.listened,
            },
            None => Lookup::Absent,
        }
    }

    /// Starts or resumes receiving a message: returns the bytes already held durably in
    /// `tmp/` for this transfer (0 for a new one; a partial transfer with different fields
    /// starts over).
    pub fn begin(&mut self, meta: &Meta) -> Result<u32, SpoolError> {
        if u64::from(meta.size) > self.limits.max_bytes {
            return Err(SpoolError::TooLarge {
                size: meta.size.into(),
                max: self.limits.max_bytes,
            });
        }
        let dir = self.tmp_dir(&meta.id);
        if let Some(old) = read_meta(&dir)
            && old.same_transfer(meta)
        {
            let body = dir.join("body");
            let held = fs::metadata(&body).map(|m| m.len()).unwrap_or(0);
            if held <= u64::from(meta.size) {
                // `held` fits in u32: it is at most `size`.
                return Ok(u32::try_from(held).unwrap_or(0));
            }
        }
        if dir.exists() {
            remove(&dir)?;
        }
        fs::create_dir(&dir).map_err(io_at(&dir))?;
        write_synced(&dir.join("meta"), meta.encode().as_bytes())?;
        write_synced(&dir.join("body"), &[])?;
        sync_dir(&dir)?;
        sync_dir(&self.root.join("tmp"))?;
        Ok(0)
    }

    /// Appends a chunk at `offset` (which must equal the bytes held) and fsyncs it; returns
    /// the bytes now held durably.
    pub fn append(&mut self, id: &str, offset: u32, data: &[u8]) -> Result<u32, SpoolError> {
        let body = self.tmp_dir(id).join("body");
        let mut file = OpenOptions::new()
            .append(true)
            .open(&body)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => SpoolError::UnknownMessage(id.to_owned()),
                _ => SpoolError::Io {
                    path: body.clone(),
                    source: e,
                },
            })?;
        let stored = file.metadata().map_err(io_at(&body))?.len();
        if stored != u64::from(offset) {
            return Err(SpoolError::BadOffset {
                id: id.to_owned(),
                offset: offset.into(),
                stored,
            });
        }
        file.write_all(data).map_err(io_at(&body))?;
        file.sync_data().map_err(io_at(&body))?;
        let held = stored + data.len() as u64;
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }

    /// Moves a complete transfer into `new/` durably, then applies retention. Only after
    /// this returns may the message be acknowledged.
    pub fn commit(&mut self, id: &str) -> Result<Entry, SpoolError> {
        let tmp = self.tmp_dir(id);
        let meta = read_meta(&tmp).ok_or_else(|| SpoolError::UnknownMessage(id.to_owned()))?;
        let new = self.root.join("new").join(dir_name(id));
        fs::rename(&tmp, &new).map_err(io_at(&new))?;
        sync_dir(&self.root.join("new"))?;
        sync_dir(&self.root.join("tmp"))?;
        let entry = Entry {
            meta,
            listened: false,
            receipted: false,
        };
        self.index.insert(id.to_owned(), entry.clone());
        self.retain(Some(id))?;
        Ok(entry)
    }

    /// Stores a text message durably in one step.
    pub fn store_text(&mut self, message: &TextMessage) -> Result<Entry, SpoolError> {
        let meta = Meta::text(message);
        let offset = self.begin(&meta)?;
        if offset == 0 {
            self.append(&meta.id, 0, message.text.as_bytes())?;
        }
        self.commit(&meta.id)
    }

    /// Moves a message to `cur/` (listened), durably.
    pub fn mark_listened(&mut self, id: &str) -> Result<(), SpoolError> {
        let Some(entry) = self.index.get_mut(id) else {
            return Err(SpoolError::UnknownMessage(id.to_owned()));
        };
        if entry.listened {
            return Ok(());
        }
        let from = self.root.join("new").join(dir_name(id));
        let to = self.root.join("cur").join(dir_name(id));
        fs::rename(&from, &to).map_err(io_at(&to))?;
        sync_dir(&self.root.join("cur"))?;
        sync_dir(&self.root.join("new"))?;
        entry.listened = true;
        Ok(())
    }

    /// Records that the phone got the listened receipt.
    pub fn mark_receipted(&mut self, id: &str) -> Result<(), SpoolError> {
        let Some(entry) = self.index.get_mut(id) else {
            return Ok(());
        };
        if !entry.listened || entry.receipted {
            return Ok(());
        }
        let path = self.root.join("cur").join(dir_name(id)).join("receipted");
        File::create(&path).map_err(io_at(&path))?;
        entry.receipted = true;
        Ok(())
    }

    /// The oldest unlistened message, if any.
    pub fn next_unlistened(&self) -> Option<Entry> {
        self.index
            .values()
            .filter(|e| !e.listened)
            .min_by_key(|e| (e.meta.received_ms, e.meta.id.clone()))
            .cloned()
    }

    /// Listened messages the phone was not told about yet, oldest first.
    pub fn pending_receipts(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self
            .index
            .values()
            .filter(|e| e.listened && !e.receipted)
            .cloned()
            .collect();
        out.sort_by_key(|e| e.meta.received_ms);
        out
    }

    /// Reads a complete message's body (at most the protocol's 10 MiB).
    pub fn read_body(&self, id: &str) -> Result<Vec<u8>, SpoolError> {
        let entry = self
            .index
            .get(id)
            .ok_or_else(|| SpoolError::UnknownMessage(id.to_owned()))?;
        let sub = if entry.listened { "cur" } else { "new" };
        let path = self.root.join(sub).join(dir_name(id)).join("body");
        fs::read(&path).map_err(io_at(&path))
    }

    /// The voice replies waiting for the phone (`outbox/` in the spool).
    pub fn outbox(&mut self) -> &mut super::outbox::Outbox {
        &mut self.outbox
    }

    /// All complete messages, by id.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.index.values()
    }

    fn tmp_dir(&self, id: &str) -> PathBuf {
        self.root.join("tmp").join(dir_name(id))
    }

    /// Removes unreadable and stale partial transfers.
    fn clean_tmp(&self) -> Result<(), SpoolError> {
        let dir = self.root.join("tmp");
        let now = SystemTime::now();
        for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
            let path = entry.map_err(io_at(&dir))?.path();
            let stale = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_none_or(|age| age > TMP_MAX_AGE);
            if stale || read_meta(&path).is_none() {
                tracing::info!(path = %path.display(), "removing a stale partial message");
                remove(&path)?;
            }
        }
        Ok(())
    }

    /// Applies the retention rules of the module docs; `keep` is never deleted.
    fn retain(&mut self, keep: Option<&str>) -> Result<(), SpoolError> {
        let now = unix_ms();
        let max_age = u64::try_from(self.limits.max_age.as_millis()).unwrap_or(u64::MAX);
        let expired: Vec<String> = self
            .index
            .values()
            .filter(|e| now.saturating_sub(e.meta.received_ms) > max_age)
            .filter(|e| Some(e.meta.id.as_str()) != keep)
            .map(|e| e.meta.id.clone())
            .collect();
        for id in expired {
            self.delete(&id, "expired")?;
        }
        loop {
            let count = self.index.len();
            let bytes: u64 = self.index.values().map(|e| u64::from(e.meta.size)).sum();
            if count <= self.limits.max_count as usize && bytes <= self.limits.max_bytes {
                return Ok(());
            }
            let victim = self
                .index
                .values()
                .filter(|e| Some(e.meta.id.as_str()) != keep)
                .min_by_key(|e| (!e.listened, e.meta.received_ms))
                .map(|e| e.meta.id.clone());
            match victim {
                Some(id) => self.delete(&id, "over the spool's limits")?,
                None => return Ok(()),
            }
        }
    }

    fn delete(&mut self, id: &str, why: &str) -> Result<(), SpoolError> {
        if let Some(e) = self.index.remove(id) {
            let sub = if e.listened { "cur" } else { "new" };
            tracing::info!(id, listened = e.listened, why, "deleting a message");
            remove(&self.root.join(sub).join(dir_name(id)))?;
        }
        Ok(())
    }
}

/// The spool shared by the daemon's tasks; every operation runs on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct SpoolHandle {
    inner: Arc<Mutex<Spool>>,
}

impl SpoolHandle {
    /// Opens the spool on the blocking pool.
    pub async fn open(root: PathBuf, limits: Limits) -> Result<SpoolHandle, SpoolError> {
        let spool = tokio::task::spawn_blocking(move || Spool::open(&root, limits))
            .await
            .map_err(|e| SpoolError::Task(e.to_string()))??;
        Ok(SpoolHandle {
            inner: Arc::new(Mutex::new(spool)),
        })
    }

    /// Runs `f` on the spool without blocking the runtime.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Spool) -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, SpoolError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut spool = inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut spool)
        })
        .await
        .map_err(|e| SpoolError::Task(e.to_string()))?
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The directory name of a message: its id in lowercase hex (ids are at most 64 bytes).
pub(super) fn dir_name(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn read_meta(dir: &Path) -> Option<Meta> {
    let text = fs::read_to_string(dir.join("meta")).ok()?;
    Meta::decode(&text)
}

pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
    let mut f = File::create(path).map_err(io_at(path))?;
    f.write_all(bytes).map_err(io_at(path))?;
    f.sync_all().map_err(io_at(path))
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

pub(super) fn remove(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpoolError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

pub(super) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

pub(super) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn limits() -> Limits {
        Limits {
            max_count: 10,
            max_bytes: 1000,
            max_age: Duration::from_secs(3600),
        }
    }

    fn voice(id: &str, size: u32) -> Meta {
        Meta {
            id: id.to_owned(),
            kind: Kind::Voice,
            sender_id: "alice\nx".into(),
            sender_name: "Alice \\ A".into(),
            conversation_id: "c".into(),
            conversation_name: "C".into(),
            codec: 0x80,
            duration_ms: 1000,
            timestamp_ms: 5,
            size,
            received_ms: unix_ms(),
        }
    }

    fn store(s: &mut Spool, id: &str, body: &[u8]) {
        let m = voice(id, body.len() as u32);
        assert_eq!(s.begin(&m).unwrap(), 0);
        s.append(id, 0, body).unwrap();
        s.commit(id).unwrap();
    }

    #[test]
    fn message_goes_tmp_new_cur_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), limits()).unwrap();
        let m = voice("m/1", 6);
        s.begin(&m).unwrap();
        assert_eq!(s.append("m/1", 0, b"abc").unwrap(), 3);
        assert_eq!(s.lookup("m/1"), Lookup::Absent);
        // A restart mid-transfer resumes from the durable offset.
        drop(s);
        let mut s = Spool::open(dir.path(), limits()).unwrap();
        assert_eq!(s.begin(&m).unwrap(), 3);
        assert!(matches!(
            s.append("m/1", 0, b"x"),
            Err(SpoolError::BadOffset { stored: 3, .. })
        ));
        s.append("m/1", 3, b"def").unwrap();
        let e = s.commit("m/1").unwrap();
        assert_eq!(e.meta, m);
        assert_eq!(s.lookup("m/1"), Lookup::Stored { listened: false });
        assert_eq!(s.read_body("m/1").unwrap(), b"abcdef");
        s.mark_listened("m/1").unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), limits()).unwrap();
        assert_eq!(s.lookup("m/1"), Lookup::Stored { listened: true });
        assert_eq!(s.pending_receipts().len(), 1);
        s.mark_receipted("m/1").unwrap();
        drop(s);
        let s = Spool::open(dir.path(), limits()).unwrap();
        assert!(s.pending_receipts().is_empty());
        assert_eq!(s.read_body("m/1").unwrap(), b"abcdef");
    }

    #[test]
    fn a_different_offer_with_the_same_id_restarts_the_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), limits()).unwrap();
        s.begin(&voice("a", 6)).unwrap();
        s.append("a", 0, b"abc").unwrap();
        assert_eq!(s.begin(&voice("a", 8)).unwrap(), 0);
    }

    #[test]
    fn stale_and_broken_tmp_entries_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        drop(Spool::open(dir.path(), limits()).unwrap());
        fs::create_dir(dir.path().join("tmp/zz")).unwrap();
        let s = Spool::open(dir.path(), limits()).unwrap();
        drop(s);
        assert!(!dir.path().join("tmp/zz").exists());
    }

    #[test]
    fn retention_deletes_listened_messages_first() {
        let dir = tempfile::tempdir().unwrap();
        let lim = Limits {
            max_count: 2,
            ..limits()
        };
        let mut s = Spool::open(dir.path(), lim).unwrap();
        store(&mut s, "old-unlistened", b"1");
        store(&mut s, "listened", b"2");
        s.mark_listened("listened").unwrap();
        store(&mut s, "newest", b"3");
        let ids: Vec<_> = s.entries().map(|e| e.meta.id.clone()).collect();
        assert_eq!(ids, ["newest", "old-unlistened"]);
        // With nothing listened left, the oldest unlistened goes.
        store(&mut s, "newer-still", b"4");
        let ids: Vec<_> = s.entries().map(|e| e.meta.id.clone()).collect();
        assert_eq!(ids, ["newer-still", "newest"]);
    }

    #[test]
    fn retention_by_bytes_and_age_and_oversized_offers() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), limits()).unwrap();
        store(&mut s, "a", &[0; 600]);
        store(&mut s, "b", &[0; 600]);
        assert_eq!(s.entries().count(), 1, "1200 bytes > 1000");
        assert!(matches!(
            s.begin(&voice("huge", 1001)),
            Err(SpoolError::TooLarge { .. })
        ));
        // Age: rewrite a message's receive time into the past, then reopen.
        let path = dir.path().join("new").join(dir_name("b")).join("meta");
        let mut m = read_meta(path.parent().unwrap()).unwrap();
        m.received_ms -= 7_200_000;
        fs::write(&path, m.encode()).unwrap();
        let s = Spool::open(dir.path(), limits()).unwrap();
        assert_eq!(s.entries().count(), 0);
    }

    #[test]
    fn text_messages_are_stored_in_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), limits()).unwrap();
        let t = TextMessage {
            id: "t1".into(),
            sender_id: "b".into(),
            sender_name: "Bob".into(),
            conversation_id: "c".into(),
            conversation_name: "C".into(),
            timestamp_ms: 1,
            text: "on my way".into(),
        };
        let e = s.store_text(&t).unwrap();
        assert_eq!(e.meta.kind, Kind::Text);
        assert_eq!(s.read_body("t1").unwrap(), b"on my way");
        assert_eq!(s.next_unlistened().unwrap().meta.id, "t1");
    }
}
