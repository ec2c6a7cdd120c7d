//! The crash-safe message spool: a Maildir-style queue on disk.
//!
//! Each message is a directory named after its id (hex-encoded, so any id is a safe file
//! name) holding `meta` (the offer's fields, `key=value` lines) and `body` (the audio, or the
//! UTF-8 text of a text message). It lives in one of three directories:
//!
//! * `tmp/`: being received. `meta` and `body` are written without fsync while chunks arrive;
//!   the body file stays open across chunks and is written from the spool's writer thread in
//!   batches. Nothing of a partial transfer is promised to the phone until it is made durable:
//!   when the link drops (and when a new offer of the same id arrives) the body is fsync'd and
//!   its length recorded in `synced` (written, fsync'd, then the directories). The offset a
//!   transfer resumes from is that recorded length, never more than the body holds; a body
//!   longer than it (bytes written after the last checkpoint, which a power loss may have left
//!   as garbage) is cut back to it. A crash thus loses only bytes the car never claimed.
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
//! which runs operations on tokio's blocking pool, and chunk data and the operations that
//! must follow it in order (begin, commit, checkpoint) on one dedicated writer thread.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use codriver_companion::{Codec, TextMessage, VoiceMessage};

/// Partial transfers in `tmp/` older than this are removed when the spool opens.
pub const TMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Write-back of a body being received is started every this many bytes.
const WRITE_BACK_STEP: u64 = 0x10_0000;

/// Jobs queued for the writer thread before [`SpoolHandle::append`] waits (back pressure
/// on the phone): with chunks of at most one frame, at most 4 MiB in flight.
const WRITER_QUEUE: usize = 64;

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
    /// Bodies of transfers being received, kept open across chunks until commit or checkpoint.
    open: HashMap<String, OpenBody>,
    /// The first failed append of a transfer whose chunks were queued without waiting; its
    /// commit reports it instead of acknowledging.
    failed: HashMap<String, SpoolError>,
}

/// An open `body` in `tmp/` and its length (the offset the next chunk must have).
#[derive(Debug)]
struct OpenBody {
    file: File,
    len: u64,
    /// Bytes up to here have had write-back started, so the commit's fsync has less to do.
    kicked: u64,
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
            open: HashMap::new(),
            failed: HashMap::new(),
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

    /// Starts or resumes receiving a message: returns the bytes held durably in `tmp/` for
    /// this transfer (0 for a new one; a partial transfer with different fields starts over).
    /// A transfer still open here (a link lost before its driver noticed) is checkpointed
    /// first, so its bytes count.
    pub fn begin(&mut self, meta: &Meta) -> Result<u32, SpoolError> {
        if u64::from(meta.size) > self.limits.max_bytes {
            return Err(SpoolError::TooLarge {
                size: meta.size.into(),
                max: self.limits.max_bytes,
            });
        }
        self.failed.remove(&meta.id);
        if self.open.contains_key(&meta.id) {
            self.checkpoint(&meta.id)?;
        }
        let dir = self.tmp_dir(&meta.id);
        if let Some(old) = read_meta(&dir)
            && old.same_transfer(meta)
        {
            let body = dir.join("body");
            let len = fs::metadata(&body).map(|m| m.len()).unwrap_or(0);
            let held = read_synced(&dir).min(len).min(u64::from(meta.size));
            if len > held {
                // Bytes after the last checkpoint: maybe garbage after a power loss.
                let file = OpenOptions::new()
                    .write(true)
                    .open(&body)
                    .map_err(io_at(&body))?;
                file.set_len(held).map_err(io_at(&body))?;
            }
            // `held` fits in u32: it is at most `size`.
            return Ok(u32::try_from(held).unwrap_or(0));
        }
        if dir.exists() {
            remove(&dir)?;
        }
        // No fsync: an offset of 0 promises nothing; commit and checkpoint sync what they need.
        fs::create_dir(&dir).map_err(io_at(&dir))?;
        let meta_path = dir.join("meta");
        fs::write(&meta_path, meta.encode()).map_err(io_at(&meta_path))?;
        let body = dir.join("body");
        let file = File::create(&body).map_err(io_at(&body))?;
        self.open.insert(
            meta.id.clone(),
            OpenBody {
                file,
                len: 0,
                kicked: 0,
            },
        );
        Ok(0)
    }

    /// Appends a chunk at `offset` (which must equal the bytes received); returns the bytes
    /// now received. Not synced: see [`commit`](Self::commit) and
    /// [`checkpoint`](Self::checkpoint).
    pub fn append(&mut self, id: &str, offset: u32, data: &[u8]) -> Result<u32, SpoolError> {
        self.append_chunks(id, offset, &[data])
    }

    /// Appends consecutive chunks starting at `offset` with one vectored write (no copy).
    pub fn append_chunks<B: AsRef<[u8]>>(
        &mut self,
        id: &str,
        offset: u32,
        chunks: &[B],
    ) -> Result<u32, SpoolError> {
        let body_path = self.tmp_dir(id).join("body");
        let body = match self.open.entry(id.to_owned()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(&body_path)
                    .map_err(|err| match err.kind() {
                        io::ErrorKind::NotFound => SpoolError::UnknownMessage(id.to_owned()),
                        _ => SpoolError::Io {
                            path: body_path.clone(),
                            source: err,
                        },
                    })?;
                let len = file.seek(SeekFrom::End(0)).map_err(io_at(&body_path))?;
                e.insert(OpenBody {
                    file,
                    len,
                    kicked: len,
                })
            }
        };
        if body.len != u64::from(offset) {
            return Err(SpoolError::BadOffset {
                id: id.to_owned(),
                offset: offset.into(),
                stored: body.len,
            });
        }
        let written = write_all_chunks(&mut body.file, chunks);
        if let Err(e) = written {
            // The file position is unknown now: reopen (and re-measure) on the next append.
            self.open.remove(id);
            return Err(SpoolError::Io {
                path: body_path,
                source: e,
            });
        }
        body.len += chunks.iter().map(|c| c.as_ref().len() as u64).sum::<u64>();
        if body.len - body.kicked >= WRITE_BACK_STEP {
            start_write_back(&body.file, body.kicked, body.len - body.kicked);
            body.kicked = body.len;
        }
        Ok(u32::try_from(body.len).unwrap_or(u32::MAX))
    }

    /// Makes a partial transfer's bytes durable and records their number as its resume
    /// offset (on link loss); closes its body. `None`: no partial transfer with that id.
    pub fn checkpoint(&mut self, id: &str) -> Result<Option<u32>, SpoolError> {
        let dir = self.tmp_dir(id);
        let body_path = dir.join("body");
        let (file, len) = match self.open.remove(id) {
            Some(b) => (b.file, b.len),
            None => match File::open(&body_path) {
                Ok(f) => {
                    let len = f.metadata().map_err(io_at(&body_path))?.len();
                    (f, len)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_at(&body_path)(e)),
            },
        };
        file.sync_data().map_err(io_at(&body_path))?;
        drop(file);
        sync_file(&dir.join("meta"))?;
        write_synced(&dir.join("synced"), len.to_string().as_bytes())?;
        sync_dir(&dir)?;
        sync_dir(&self.root.join("tmp"))?;
        Ok(Some(u32::try_from(len).unwrap_or(u32::MAX)))
    }

    /// Moves a complete transfer into `new/` durably, then applies retention. Only after
    /// this returns may the message be acknowledged.
    pub fn commit(&mut self, id: &str) -> Result<Entry, SpoolError> {
        if let Some(e) = self.failed.remove(id) {
            self.open.remove(id);
            return Err(e);
        }
        let tmp = self.tmp_dir(id);
        let meta = read_meta(&tmp).ok_or_else(|| SpoolError::UnknownMessage(id.to_owned()))?;
        let body = tmp.join("body");
        match self.open.remove(id) {
            Some(b) => b.file.sync_data().map_err(io_at(&body))?,
            None => sync_file(&body)?,
        }
        sync_file(&tmp.join("meta"))?;
        // The resume offset means nothing once complete; a leftover file is harmless.
        let _ = fs::remove_file(tmp.join("synced"));
        sync_dir(&tmp)?;
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

/// The spool shared by the daemon's tasks. Operations run on tokio's blocking pool
/// ([`with`](Self::with)), except chunk data ([`append`](Self::append), queued without a
/// round trip) and what must follow it in order ([`ordered`](Self::ordered)), which one
/// writer thread runs, in batches.
#[derive(Debug, Clone)]
pub struct SpoolHandle {
    inner: Arc<Mutex<Spool>>,
    /// The writer thread's queue; the thread ends when the last handle is dropped.
    writer: tokio::sync::mpsc::Sender<Job>,
}

/// Work for the writer thread.
enum Job {
    /// Consecutive chunks of one message, written without fsync; a failure is reported by
    /// the commit.
    Append {
        id: String,
        offset: u32,
        chunks: Vec<Vec<u8>>,
    },
    /// Anything that must run after the data queued before it.
    Run(Box<dyn FnOnce(&mut Spool) + Send>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Append { id, offset, chunks } => {
                write!(f, "Append({id}@{offset}, {} chunks)", chunks.len())
            }
            Job::Run(_) => f.write_str("Run"),
        }
    }
}

impl SpoolHandle {
    /// Opens the spool on the blocking pool and starts its writer thread.
    pub async fn open(root: PathBuf, limits: Limits) -> Result<SpoolHandle, SpoolError> {
        let spool = tokio::task::spawn_blocking(move || Spool::open(&root, limits))
            .await
            .map_err(|e| SpoolError::Task(e.to_string()))??;
        let inner = Arc::new(Mutex::new(spool));
        let (writer, jobs) = tokio::sync::mpsc::channel(WRITER_QUEUE);
        let shared = inner.clone();
        std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || write_loop(&shared, jobs))
            .map_err(|e| SpoolError::Task(e.to_string()))?;
        Ok(SpoolHandle { inner, writer })
    }

    /// Runs `f` on the spool without blocking the runtime.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Spool) -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, SpoolError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&inner)))
            .await
            .map_err(|e| SpoolError::Task(e.to_string()))?
    }

    /// Queues consecutive chunks of a message, the first at `offset`, for the writer
    /// thread; waits only while the queue is full. An error writing them makes the message's
    /// [`Spool::commit`] fail.
    pub async fn append(
        &self,
        id: String,
        offset: u32,
        chunks: Vec<Vec<u8>>,
    ) -> Result<(), SpoolError> {
        self.writer
            .send(Job::Append { id, offset, chunks })
            .await
            .map_err(|_| SpoolError::Task("the spool writer stopped".into()))
    }

    /// Runs `f` on the writer thread after every chunk queued before it.
    pub async fn ordered<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Spool) -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, SpoolError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Job::Run(Box::new(move |s| {
            let _ = tx.send(f(s));
        }));
        let stopped = || SpoolError::Task("the spool writer stopped".into());
        self.writer.send(job).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// The writer thread: takes what is queued (up to a batch), then runs it under one lock,
/// writing consecutive chunks of a message with one vectored write.
fn write_loop(spool: &Mutex<Spool>, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(WRITER_QUEUE);
    while let Some(job) = jobs.blocking_recv() {
        batch.push(job);
        while batch.len() < WRITER_QUEUE {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut s = lock(spool);
        let mut run: Option<(String, u32, Vec<Vec<u8>>)> = None;
        for job in batch.drain(..) {
            match job {
                Job::Append {
                    id,
                    offset,
                    mut chunks,
                } => {
                    if let Some((rid, roff, run_chunks)) = &mut run {
                        let end = u64::from(*roff)
                            + run_chunks.iter().map(|c| c.len() as u64).sum::<u64>();
                        if *rid == id && end == u64::from(offset) {
                            run_chunks.append(&mut chunks);
                            continue;
                        }
                    }
                    if let Some(r) = run.replace((id, offset, chunks)) {
                        write_run(&mut s, r);
                    }
                }
                Job::Run(f) => {
                    if let Some(r) = run.take() {
                        write_run(&mut s, r);
                    }
                    f(&mut s);
                }
            }
        }
        if let Some(r) = run.take() {
            write_run(&mut s, r);
        }
    }
}

fn write_run(s: &mut Spool, (id, offset, chunks): (String, u32, Vec<Vec<u8>>)) {
    if s.failed.contains_key(&id) {
        return;
    }
    if let Err(e) = s.append_chunks(&id, offset, &chunks) {
        tracing::warn!(id, error = %e, "cannot store a chunk");
        s.failed.insert(id, e);
    }
}

fn lock(spool: &Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    spool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// The resume offset recorded by the last checkpoint; 0 when none (or unreadable).
fn read_synced(dir: &Path) -> u64 {
    fs::read_to_string(dir.join("synced"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes every byte of `chunks`, in order, with as few `writev` calls as the kernel allows.
fn write_all_chunks<B: AsRef<[u8]>>(file: &mut File, chunks: &[B]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c.as_ref())).collect();
    let mut rest = &mut slices[..];
    IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Starts writing `len` bytes at `offset` of `file` back to the disk without waiting for
/// it (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`): not durability, only less left for
/// the commit's fsync. Failures are ignored; the fsync reports real ones.
#[cfg(target_os = "linux")]
fn start_write_back(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a valid open descriptor and plain integers; the call touches no user memory.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

#[cfg(not(target_os = "linux"))]
fn start_write_back(_file: &File, _offset: u64, _len: u64) {}

/// fsyncs a file that is not open.
fn sync_file(path: &Path) -> Result<(), SpoolError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_at(path))
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
        // The link drops: the bytes received become durable and the resume offset.
        assert_eq!(s.checkpoint("m/1").unwrap(), Some(3));
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
    fn a_crash_resumes_from_the_last_checkpoint_and_drops_the_bytes_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), limits()).unwrap();
        let m = voice("m", 9);
        s.begin(&m).unwrap();
        s.append_chunks("m", 0, &[b"ab".as_slice(), b"c"]).unwrap();
        s.checkpoint("m").unwrap();
        s.append("m", 3, b"def").unwrap();
        // Killed: "def" was written but never claimed.
        drop(s);
        let mut s = Spool::open(dir.path(), limits()).unwrap();
        assert_eq!(s.begin(&m).unwrap(), 3);
        s.append("m", 3, b"DEF").unwrap();
        // A new offer of the same id in the same run (the old link not noticed dead yet)
        // counts what was received.
        assert_eq!(s.begin(&m).unwrap(), 6);
        s.append("m", 6, b"ghi").unwrap();
        s.commit("m").unwrap();
        assert_eq!(s.read_body("m").unwrap(), b"abcDEFghi");
        assert_eq!(s.checkpoint("m").unwrap(), None);
    }

    #[test]
    fn a_failed_queued_append_fails_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), limits()).unwrap();
        s.begin(&voice("m", 6)).unwrap();
        write_run(&mut s, ("m".into(), 2, vec![b"xyz".to_vec()]));
        write_run(&mut s, ("m".into(), 0, vec![b"abc".to_vec()]));
        assert!(matches!(
            s.commit("m"),
            Err(SpoolError::BadOffset { stored: 0, .. })
        ));
        assert_eq!(s.begin(&voice("m", 6)).unwrap(), 0);
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
