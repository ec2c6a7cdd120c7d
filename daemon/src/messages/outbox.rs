//! The outbox: voice replies recorded but not yet acknowledged by the phone, crash-safe like
//! the incoming spool.
//!
//! Each reply is a directory named after its id (hex) with `meta` (the `REPLY_OFFER` fields,
//! `key=value` lines) and `body` (the Ogg Opus file). It is written whole in `outbox/tmp/`,
//! fsync'd, then moved by one `rename` into `outbox/new/` (directories fsync'd): a reply in
//! `new/` is complete, and it stays there across restarts and power loss until the phone
//! sends `REPLY_ACK` or refuses it for good. Opening the outbox empties `tmp/` (a recording
//! interrupted by a crash is lost; the driver heard no confirmation for it).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use codriver_companion::{Codec, VoiceReply};

use super::spool::{SpoolError, dir_name, escape, io_at, remove, sync_dir, unescape, write_synced};

/// The replies waiting for the phone; blocking, used through the spool's handle.
#[derive(Debug)]
pub struct Outbox {
    root: PathBuf,
    /// Replies by id.
    index: BTreeMap<String, VoiceReply>,
}

impl Outbox {
    /// Opens (creating) the outbox at `root`, empties `tmp/` and reads `new/`.
    pub fn open(root: &Path) -> Result<Outbox, SpoolError> {
        for sub in ["tmp", "new"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        }
        let tmp = root.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_at(&tmp))? {
            let path = entry.map_err(io_at(&tmp))?.path();
            tracing::info!(path = %path.display(), "removing an unfinished reply");
            remove(&path)?;
        }
        let mut index = BTreeMap::new();
        let new = root.join("new");
        for entry in fs::read_dir(&new).map_err(io_at(&new))? {
            let path = entry.map_err(io_at(&new))?.path();
            match fs::read_to_string(path.join("meta"))
                .ok()
                .and_then(|t| decode(&t))
            {
                Some(r) => {
                    index.insert(r.id.clone(), r);
                }
                None => {
                    tracing::warn!(path = %path.display(), "unreadable reply in the outbox; removing it");
                    remove(&path)?;
                }
            }
        }
        Ok(Outbox {
            root: root.to_owned(),
            index,
        })
    }

    /// Stores a reply durably (`reply.size` is set from `body`); only then may the driver
    /// hear that it was recorded.
    pub fn store(&mut self, mut reply: VoiceReply, body: &[u8]) -> Result<(), SpoolError> {
        reply.size = u32::try_from(body.len()).unwrap_or(u32::MAX);
        let name = dir_name(&reply.id);
        let tmp = self.root.join("tmp").join(&name);
        remove(&tmp)?;
        fs::create_dir(&tmp).map_err(io_at(&tmp))?;
        write_synced(&tmp.join("meta"), encode(&reply).as_bytes())?;
        write_synced(&tmp.join("body"), body)?;
        sync_dir(&tmp)?;
        let new = self.root.join("new").join(&name);
        fs::rename(&tmp, &new).map_err(io_at(&new))?;
        sync_dir(&self.root.join("new"))?;
        sync_dir(&self.root.join("tmp"))?;
        self.index.insert(reply.id.clone(), reply);
        Ok(())
    }

    /// The oldest reply waiting, with its audio.
    pub fn oldest(&self) -> Result<Option<(VoiceReply, Vec<u8>)>, SpoolError> {
        let Some(reply) = self
            .index
            .values()
            .min_by_key(|r| (r.timestamp_ms, r.id.clone()))
        else {
            return Ok(None);
        };
        let body = self.root.join("new").join(dir_name(&reply.id)).join("body");
        let data = fs::read(&body).map_err(io_at(&body))?;
        Ok(Some((reply.clone(), data)))
    }

    /// Removes a reply durably (acknowledged, or refused for good).
    pub fn remove(&mut self, id: &str) -> Result<(), SpoolError> {
        if self.index.remove(id).is_some() {
            remove(&self.root.join("new").join(dir_name(id)))?;
            sync_dir(&self.root.join("new"))?;
        }
        Ok(())
    }

    /// How many replies wait.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no reply waits.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

fn encode(r: &VoiceReply) -> String {
    let fields: [(&str, String); 7] = [
        ("id", escape(&r.id)),
        ("conversation_id", escape(&r.conversation_id)),
        ("in_reply_to", escape(&r.in_reply_to)),
        ("codec", r.codec.code().to_string()),
        ("duration_ms", r.duration_ms.to_string()),
        ("timestamp_ms", r.timestamp_ms.to_string()),
        ("size", r.size.to_string()),
    ];
    fields.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

fn decode(text: &str) -> Option<VoiceReply> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line.split_once('=')?;
        map.insert(k, unescape(v));
    }
    let num = |k: &str| map.get(k)?.parse::<u64>().ok();
    Some(VoiceReply {
        id: map.get("id")?.clone(),
        conversation_id: map.get("conversation_id")?.clone(),
        in_reply_to: map.get("in_reply_to")?.clone(),
        codec: Codec::from_code(u8::try_from(num("codec")?).ok()?),
        duration_ms: u32::try_from(num("duration_ms")?).ok()?,
        timestamp_ms: num("timestamp_ms")?,
        size: u32::try_from(num("size")?).ok()?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn reply(id: &str, t: u64) -> VoiceReply {
        VoiceReply {
            id: id.into(),
            conversation_id: "conv\n7".into(),
            in_reply_to: "m1".into(),
            codec: Codec::OggOpus,
            duration_ms: 1200,
            timestamp_ms: t,
            size: 0,
        }
    }

    #[test]
    fn replies_survive_reopening_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path()).unwrap();
        o.store(reply("r2", 20), b"second").unwrap();
        o.store(reply("r1", 10), b"first").unwrap();
        // A recording cut short by a crash: left in tmp/.
        fs::create_dir(dir.path().join("tmp").join("7878")).unwrap();
        drop(o);
        let mut o = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.len(), 2);
        let (r, body) = o.oldest().unwrap().unwrap();
        assert_eq!(
            (r.id.as_str(), r.size, body.as_slice()),
            ("r1", 5, &b"first"[..])
        );
        assert_eq!(r.conversation_id, "conv\n7");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        o.remove("r1").unwrap();
        drop(o);
        let o = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.oldest().unwrap().unwrap().0.id, "r2");
    }
}
