//! The protocol's audio codecs through libopus (feature `opus`): decoding voice messages in
//! `ogg-opus` (RFC 7845) and `opus-packets` (u16 big-endian length before each packet) to
//! mono PCM, and encoding replies as Ogg Opus.
//!
//! Everything here works on whole messages in memory (a voice message is at most the
//! protocol's 10 MiB): no I/O, no clock. Decoding is bounded: output longer than
//! [`MAX_DECODED`] is refused instead of allocated, and a corrupt or truncated input is an
//! [`AudioError`], never a panic.
//!
//! Replies are encoded the way voice notes usually are: mono, 20 ms frames, 24 kbit/s VBR,
//! libopus's VoIP mode, one Ogg page per second of audio.

use std::io::Cursor;
use std::time::Duration;

use ogg::{PacketReader, PacketWriteEndInfo, PacketWriter};
use opus::{Application, Bitrate, Channels};

use crate::frame::Codec;

/// Opus always counts time in 48 kHz samples: granule positions and pre-skip use this rate.
pub const OPUS_RATE: u32 = 48_000;

/// The longest audio a message may decode to; longer output is refused.
pub const MAX_DECODED: Duration = Duration::from_secs(15 * 60);

/// Bit rate of encoded replies.
pub const REPLY_BITRATE: i32 = 24_000;

/// Frame length of encoded replies, in milliseconds.
pub const REPLY_FRAME_MS: u32 = 20;

/// Audio in a page of an encoded reply: one second (RFC 7845 recommends at most one).
const PACKETS_PER_PAGE: usize = 50;

/// The largest packet one 20 ms frame can encode to (RFC 6716: 1275 bytes per frame).
const MAX_PACKET: usize = 1275;

/// The most samples one Opus packet decodes to per channel: 120 ms at 48 kHz.
const MAX_PACKET_SAMPLES: usize = 5760;

/// What is wrong with audio handed to this module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The codec is not one of the protocol's Opus codecs.
    #[error("codec {0} is not decoded here")]
    UnsupportedCodec(Codec),
    /// The data ends in the middle of a page, a packet or a length prefix, or the Ogg stream
    /// ends without its last page.
    #[error("the audio is truncated: {0}")]
    Truncated(&'static str),
    /// The Ogg container is damaged (bad capture pattern or checksum) or not Ogg at all.
    #[error("the Ogg container is damaged: {0}")]
    Container(String),
    /// The Ogg stream is not Opus, or its headers are invalid.
    #[error("not a valid Ogg Opus stream: {0}")]
    Header(&'static str),
    /// The stream needs something this decoder does not do (a multichannel mapping).
    #[error("unsupported Ogg Opus stream: {0}")]
    Unsupported(&'static str),
    /// libopus refused a packet or a setting.
    #[error("Opus: {0}")]
    Opus(#[from] opus::Error),
    /// The output sample rate is not one Opus supports (8, 12, 16, 24 or 48 kHz).
    #[error("{0} Hz is not an Opus sample rate (8000, 12000, 16000, 24000 or 48000)")]
    SampleRate(u32),
    /// The audio decodes to more than [`MAX_DECODED`].
    #[error("the audio is longer than {}s", MAX_DECODED.as_secs())]
    TooLong,
}

/// Decodes a voice message in `codec` to mono samples at `rate` (Opus resamples internally:
/// 8, 12, 16, 24 or 48 kHz); stereo is mixed down.
pub fn decode(codec: Codec, data: &[u8], rate: u32) -> Result<Vec<i16>, AudioError> {
    match codec {
        Codec::OggOpus => decode_ogg_opus(data, rate),
        Codec::OpusPackets => decode_opus_packets(data, rate),
        other => Err(AudioError::UnsupportedCodec(other)),
    }
}

/// Decodes an Ogg Opus file (RFC 7845, channel mapping family 0: mono or stereo) to mono at
/// `rate`, dropping the pre-skip, trimming the end to the last page's granule position and
/// applying the header's output gain.
pub fn decode_ogg_opus(data: &[u8], rate: u32) -> Result<Vec<i16>, AudioError> {
    check_rate(rate)?;
    let mut reader = PacketReader::new(Cursor::new(data));
    let head = next_packet(&mut reader)?.ok_or(AudioError::Truncated("no OpusHead"))?;
    let head = OpusHead::parse(&head.data)?;
    let tags = next_packet(&mut reader)?.ok_or(AudioError::Truncated("no OpusTags"))?;
    if !tags.data.starts_with(b"OpusTags") {
        return Err(AudioError::Header("the second packet is not OpusTags"));
    }
    let channels = channels(head.channels)?;
    let mut decoder = opus::Decoder::new(rate, channels)?;
    if head.gain != 0 {
        decoder.set_gain(i32::from(head.gain))?;
    }
    let per_48k = |n: u64| n * u64::from(rate) / u64::from(OPUS_RATE);
    let skip = usize::try_from(per_48k(u64::from(head.pre_skip))).unwrap_or(usize::MAX);
    let mut out = Mono::new(rate, head.channels);
    let mut ended = false;
    let mut last_granule = None;
    while let Some(packet) = next_packet(&mut reader)? {
        if packet.data.is_empty() {
            continue;
        }
        out.decode(&mut decoder, &packet.data)?;
        if packet.last_in_page() {
            last_granule = Some(packet.absgp_page());
        }
        if packet.last_in_stream() {
            ended = true;
            break;
        }
    }
    if !ended {
        return Err(AudioError::Truncated("the Ogg stream has no last page"));
    }
    let mut samples = out.samples;
    // End trimming (RFC 7845 section 4.4): the last granule position counts the samples
    // to play, pre-skip included; the encoder padded the last packet beyond it.
    if let Some(g) = last_granule.filter(|&g| g != u64::MAX) {
        let total = usize::try_from(per_48k(g)).unwrap_or(usize::MAX);
        samples.truncate(total);
    }
    samples.drain(..skip.min(samples.len()));
    Ok(samples)
}

/// Decodes `opus-packets` (each packet preceded by its length, u16 big-endian, 48 kHz time
/// base, mono or stereo by each packet's own header) to mono at `rate`. No pre-skip: every
/// decoded sample is played.
pub fn decode_opus_packets(data: &[u8], rate: u32) -> Result<Vec<i16>, AudioError> {
    check_rate(rate)?;
    let mut rest = data;
    let mut decoder: Option<(opus::Decoder, Mono)> = None;
    while !rest.is_empty() {
        let [hi, lo, tail @ ..] = rest else {
            return Err(AudioError::Truncated("a length prefix is cut short"));
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 {
            return Err(AudioError::Header("an Opus packet of length 0"));
        }
        if tail.len() < len {
            return Err(AudioError::Truncated("a packet is cut short"));
        }
        let (packet, after) = tail.split_at(len);
        rest = after;
        let (dec, out) = match &mut decoder {
            Some(d) => d,
            None => {
                let n = match opus::packet::get_nb_channels(packet)? {
                    Channels::Mono => 1,
                    Channels::Stereo => 2,
                };
                decoder.insert((opus::Decoder::new(rate, channels(n)?)?, Mono::new(rate, n)))
            }
        };
        out.decode(dec, packet)?;
    }
    Ok(decoder.map(|(_, m)| m.samples).unwrap_or_default())
}

/// Frames `packets` as `opus-packets`: each preceded by its length, u16 big-endian.
pub fn frame_opus_packets<'a>(packets: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        // Opus packets are at most a few kilobytes; a longer slice is not a packet.
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&p[..usize::from(len)]);
    }
    out
}

/// Encodes mono speech into an Ogg Opus file, a piece at a time: [`push`](Self::push) the
/// samples as they are recorded, then [`finish`](Self::finish). Only the compressed bytes
/// are kept (about 3 KB per second).
pub struct OggOpusEncoder {
    encoder: opus::Encoder,
    writer: PacketWriter<'static, Vec<u8>>,
    serial: u32,
    rate: u32,
    /// Samples per frame at `rate`.
    frame: usize,
    /// Samples not yet a whole frame.
    pending: Vec<i16>,
    /// Encoder delay in samples at `rate`; the same in 48 kHz units is the pre-skip.
    lookahead: usize,
    pre_skip: u64,
    /// Samples pushed (the real audio, without padding).
    pushed: u64,
    /// Samples encoded, padding included.
    encoded: u64,
    packets: usize,
    buf: Vec<u8>,
}

impl std::fmt::Debug for OggOpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusEncoder")
            .field("rate", &self.rate)
            .field("pushed", &self.pushed)
            .finish_non_exhaustive()
    }
}

impl OggOpusEncoder {
    /// An encoder for mono samples at `rate` (8, 12, 16, 24 or 48 kHz); `serial` is the Ogg
    /// stream's serial number (any value; random is best). Writes the two header pages.
    pub fn new(rate: u32, serial: u32) -> Result<Self, AudioError> {
        check_rate(rate)?;
        let mut encoder = opus::Encoder::new(rate, Channels::Mono, Application::Voip)?;
        encoder.set_bitrate(Bitrate::Bits(REPLY_BITRATE))?;
        let lookahead = usize::try_from(encoder.get_lookahead()?.max(0)).unwrap_or(0);
        let pre_skip = lookahead as u64 * u64::from(OPUS_RATE) / u64::from(rate);
        let mut writer = PacketWriter::new(Vec::new());
        let head = OpusHead {
            channels: 1,
            // At most 48000 * lookahead / rate, a few hundred: fits in u16.
            pre_skip: u16::try_from(pre_skip).unwrap_or(u16::MAX),
            input_rate: rate,
            gain: 0,
        };
        // RFC 7845 section 3: each header packet on a page of its own, granule position 0.
        write(
            &mut writer,
            head.to_bytes(),
            serial,
            PacketWriteEndInfo::EndPage,
            0,
        )?;
        write(&mut writer, tags(), serial, PacketWriteEndInfo::EndPage, 0)?;
        Ok(OggOpusEncoder {
            encoder,
            writer,
            serial,
            rate,
            frame: (rate * REPLY_FRAME_MS / 1000) as usize,
            pending: Vec::new(),
            lookahead,
            pre_skip,
            pushed: 0,
            encoded: 0,
            packets: 0,
            buf: vec![0; MAX_PACKET],
        })
    }

    /// Encodes `samples` (mono, at the encoder's rate); a partial frame waits for more.
    pub fn push(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        self.pushed += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        let whole = self.pending.len() / self.frame * self.frame;
        let pending = std::mem::take(&mut self.pending);
        for frame in pending[..whole].chunks_exact(self.frame) {
            self.encode(frame, false)?;
        }
        self.pending = pending[whole..].to_vec();
        Ok(())
    }

    /// How long the audio pushed so far lasts.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.pushed * 1_000_000 / u64::from(self.rate))
    }

    /// Flushes the encoder (the lookahead and the last partial frame are padded with
    /// silence, which the last granule position trims again) and returns the file.
    pub fn finish(mut self) -> Result<Vec<u8>, AudioError> {
        let mut tail = std::mem::take(&mut self.pending);
        tail.resize(tail.len() + self.lookahead, 0);
        let frames = tail.len().div_ceil(self.frame).max(1);
        tail.resize(frames * self.frame, 0);
        let mut frames = tail.chunks_exact(self.frame).peekable();
        while let Some(frame) = frames.next() {
            self.encode(frame, frames.peek().is_none())?;
        }
        Ok(self.writer.into_inner())
    }

    fn encode(&mut self, frame: &[i16], last: bool) -> Result<(), AudioError> {
        let n = self.encoder.encode(frame, &mut self.buf)?;
        self.encoded += frame.len() as u64;
        self.packets += 1;
        let to_48k = |s: u64| s * u64::from(OPUS_RATE) / u64::from(self.rate);
        // The granule position of the last packet trims the padding: pre-skip plus the
        // real samples, never more than what was encoded.
        let granule = if last {
            self.pre_skip + to_48k(self.pushed)
        } else {
            to_48k(self.encoded)
        };
        let end = if last {
            PacketWriteEndInfo::EndStream
        } else if self.packets.is_multiple_of(PACKETS_PER_PAGE) {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        write(
            &mut self.writer,
            self.buf[..n].to_vec(),
            self.serial,
            end,
            granule,
        )
    }
}

/// Encodes mono `samples` at `rate` into an Ogg Opus file in one go.
pub fn encode_ogg_opus(samples: &[i16], rate: u32, serial: u32) -> Result<Vec<u8>, AudioError> {
    let mut e = OggOpusEncoder::new(rate, serial)?;
    e.push(samples)?;
    e.finish()
}

/// Encodes mono `samples` at `rate` into `opus-packets` (20 ms frames, the last padded).
pub fn encode_opus_packets(samples: &[i16], rate: u32) -> Result<Vec<u8>, AudioError> {
    check_rate(rate)?;
    let mut encoder = opus::Encoder::new(rate, Channels::Mono, Application::Voip)?;
    encoder.set_bitrate(Bitrate::Bits(REPLY_BITRATE))?;
    let frame = (rate * REPLY_FRAME_MS / 1000) as usize;
    let mut out = Vec::new();
    let mut buf = vec![0u8; MAX_PACKET];
    for chunk in samples.chunks(frame) {
        let mut f = chunk.to_vec();
        f.resize(frame, 0);
        let n = encoder.encode(&f, &mut buf)?;
        out.extend_from_slice(&frame_opus_packets([&buf[..n]]));
    }
    Ok(out)
}

/// The identification header (RFC 7845 section 5.1), mapping family 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpusHead {
    channels: u8,
    pre_skip: u16,
    input_rate: u32,
    /// Output gain, Q7.8 dB.
    gain: i16,
}

impl OpusHead {
    fn parse(b: &[u8]) -> Result<Self, AudioError> {
        if b.len() < 19 || !b.starts_with(b"OpusHead") {
            return Err(AudioError::Header("the first packet is not OpusHead"));
        }
        // Version: major 0 (the upper four bits) is this format; minor versions append.
        if b[8] >> 4 != 0 {
            return Err(AudioError::Unsupported("OpusHead major version above 0"));
        }
        let channels = b[9];
        if channels == 0 {
            return Err(AudioError::Header("zero channels"));
        }
        let family = b[18];
        if family != 0 || channels > 2 {
            return Err(AudioError::Unsupported(
                "channel mapping family other than 0 (more than two channels)",
            ));
        }
        Ok(OpusHead {
            channels,
            pre_skip: u16::from_le_bytes([b[10], b[11]]),
            input_rate: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            gain: i16::from_le_bytes([b[16], b[17]]),
        })
    }

    fn to_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(19);
        b.extend_from_slice(b"OpusHead");
        b.push(1);
        b.push(self.channels);
        b.extend_from_slice(&self.pre_skip.to_le_bytes());
        b.extend_from_slice(&self.input_rate.to_le_bytes());
        b.extend_from_slice(&self.gain.to_le_bytes());
        b.push(0);
        b
    }
}

/// The comment header: vendor "codriver", no comments.
fn tags() -> Vec<u8> {
    let vendor = b"codriver";
    let mut b = Vec::with_capacity(8 + 4 + vendor.len() + 4);
    b.extend_from_slice(b"OpusTags");
    b.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    b.extend_from_slice(vendor);
    b.extend_from_slice(&0u32.to_le_bytes());
    b
}

/// Decoded samples mixed down to mono, bounded by [`MAX_DECODED`].
struct Mono {
    samples: Vec<i16>,
    channels: usize,
    max: usize,
    buf: Vec<i16>,
}

impl Mono {
    fn new(rate: u32, channels: u8) -> Self {
        let channels = usize::from(channels.max(1));
        Mono {
            samples: Vec::new(),
            channels,
            max: (MAX_DECODED.as_secs() * u64::from(rate)) as usize,
            buf: vec![0; MAX_PACKET_SAMPLES * channels],
        }
    }

    fn decode(&mut self, decoder: &mut opus::Decoder, packet: &[u8]) -> Result<(), AudioError> {
        let n = decoder.decode(packet, &mut self.buf, false)?;
        if self.samples.len() + n > self.max {
            return Err(AudioError::TooLong);
        }
        let frames = self.buf[..n * self.channels].chunks_exact(self.channels);
        self.samples.extend(frames.map(|f| {
            let sum: i32 = f.iter().map(|&s| i32::from(s)).sum();
            // The mean of i16 values is an i16.
            (sum / self.channels as i32) as i16
        }));
        Ok(())
    }
}

fn check_rate(rate: u32) -> Result<(), AudioError> {
    match rate {
        8_000 | 12_000 | 16_000 | 24_000 | 48_000 => Ok(()),
        other => Err(AudioError::SampleRate(other)),
    }
}

fn channels(n: u8) -> Result<Channels, AudioError> {
    match n {
        1 => Ok(Channels::Mono),
        2 => Ok(Channels::Stereo),
        _ => Err(AudioError::Unsupported("more than two channels")),
    }
}

fn next_packet(
    reader: &mut PacketReader<Cursor<&[u8]>>,
) -> Result<Option<ogg::Packet>, AudioError> {
    match reader.read_packet() {
        Ok(p) => Ok(p),
        Err(ogg::OggReadError::ReadError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(AudioError::Truncated("a page is cut short"))
        }
        Err(e) => Err(AudioError::Container(e.to_string())),
    }
}

fn write(
    writer: &mut PacketWriter<'static, Vec<u8>>,
    packet: Vec<u8>,
    serial: u32,
    end: PacketWriteEndInfo,
    granule: u64,
) -> Result<(), AudioError> {
    writer
        .write_packet(packet, serial, end, granule)
        // Writing to a Vec cannot fail.
        .map_err(|e| AudioError::Container(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// One second of a voiced sound at 16 kHz: a 150 Hz buzz with harmonics.
    fn speech(ms: u32) -> Vec<i16> {
        let n = 16 * ms as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let v = (0..5)
                    .map(|h| {
                        let f = 150.0 * (h + 1) as f32;
                        (2.0 * std::f32::consts::PI * f * t).sin() / (h + 1) as f32
                    })
                    .sum::<f32>();
                (v * 6000.0) as i16
            })
            .collect()
    }

    fn energy(s: &[i16]) -> f64 {
        s.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / s.len().max(1) as f64
    }

    /// Ogg pages in `data`: (header type, granule position, serial, sequence, segments).
    fn pages(data: &[u8]) -> Vec<(u8, u64, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let p = &data[at..];
            assert_eq!(&p[..4], b"OggS", "capture pattern at {at}");
            let kind = p[5];
            let granule = u64::from_le_bytes(p[6..14].try_into().unwrap());
            let serial = u32::from_le_bytes(p[14..18].try_into().unwrap());
            let seq = u32::from_le_bytes(p[18..22].try_into().unwrap());
            let nseg = usize::from(p[26]);
            let lacing = p[27..27 + nseg].to_vec();
            let body: usize = lacing.iter().map(|&l| usize::from(l)).sum();
            out.push((
                kind,
                granule,
                serial,
                seq,
                p[27 + nseg..27 + nseg + body].to_vec(),
            ));
            at += 27 + nseg + body;
        }
        out
    }

    #[test]
    fn ogg_opus_round_trip_keeps_length_and_sound() {
        let input = speech(2_000);
        let file = encode_ogg_opus(&input, 16_000, 7).unwrap();
        // 24 kbit/s: about 3 KB per second plus headers.
        assert!(
            file.len() > 4_000 && file.len() < 9_000,
            "{} bytes",
            file.len()
        );
        let out = decode_ogg_opus(&file, 16_000).unwrap();
        assert_eq!(
            out.len(),
            input.len(),
            "pre-skip and padding trimmed exactly"
        );
        let (e_in, e_out) = (energy(&input), energy(&out));
        assert!((e_out / e_in - 1.0).abs() < 0.3, "energy {e_in} → {e_out}");
        // At 48 kHz too: three times the samples.
        assert_eq!(
            decode_ogg_opus(&file, 48_000).unwrap().len(),
            input.len() * 3
        );
    }

    #[test]
    fn ogg_page_structure_follows_rfc_7845() {
        let input = speech(2_500);
        let file = encode_ogg_opus(&input, 16_000, 0xC0D1).unwrap();
        let pages = pages(&file);
        // OpusHead alone on the first page (beginning of stream), OpusTags on the second.
        let (kind, granule, serial, seq, body) = &pages[0];
        assert_eq!((*kind, *granule, *serial, *seq), (0x02, 0, 0xC0D1, 0));
        assert_eq!(&body[..8], b"OpusHead");
        assert_eq!(body[9], 1, "mono");
        let pre_skip = u16::from_le_bytes([body[10], body[11]]);
        assert!(pre_skip > 0, "the encoder delay is announced");
        assert_eq!(u32::from_le_bytes(body[12..16].try_into().unwrap()), 16_000);
        let (kind, granule, _, seq, body) = &pages[1];
        assert_eq!((*kind, *granule, *seq), (0x00, 0, 1));
        assert_eq!(&body[..8], b"OpusTags");
        // Audio pages: one per second (50 packets), granules rising, the last one ends the
        // stream at pre-skip + the real samples at 48 kHz.
        let audio = &pages[2..];
        assert_eq!(audio.len(), 3, "2.5 s of audio in pages of one second");
        assert!(audio.windows(2).all(|w| w[0].1 < w[1].1));
        assert_eq!(audio[0].1, 50 * 960);
        let last = audio.last().unwrap();
        assert_eq!(last.0 & 0x04, 0x04, "end of stream");
        assert_eq!(last.1, u64::from(pre_skip) + input.len() as u64 * 3);
        assert!(pages.iter().enumerate().all(|(i, p)| p.3 as usize == i));
    }

    #[test]
    fn opus_packets_round_trip() {
        let input = speech(1_000);
        let data = encode_opus_packets(&input, 16_000).unwrap();
        // 50 packets, each after its u16 big-endian length.
        let mut rest = &data[..];
        let mut n = 0;
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            assert!(len > 0 && len <= MAX_PACKET);
            rest = &rest[2 + len..];
            n += 1;
        }
        assert_eq!(n, 50);
        let out = decode_opus_packets(&data, 16_000).unwrap();
        assert_eq!(out.len(), input.len());
        assert!(energy(&out) > energy(&input) * 0.5);
        assert_eq!(
            decode(Codec::OpusPackets, &data, 48_000).unwrap().len(),
            48_000
        );
    }

    #[test]
    fn corrupt_and_truncated_input_is_an_error_not_a_panic() {
        let file = encode_ogg_opus(&speech(1_000), 16_000, 1).unwrap();
        for cut in [0, 10, 27, 40, file.len() / 2, file.len() - 1] {
            assert!(
                decode_ogg_opus(&file[..cut], 16_000).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = file.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xFF;
        assert!(decode_ogg_opus(&bad, 16_000).is_err(), "checksum");
        assert!(decode_ogg_opus(b"RIFF....WAVEfmt ", 16_000).is_err());
        // Every prefix and a flipped byte anywhere: errors or audio, never a panic.
        for i in (0..file.len()).step_by(7) {
            let _ = decode_ogg_opus(&file[..i], 16_000);
            let mut f = file.clone();
            f[i] = f[i].wrapping_add(0x55);
            let _ = decode_ogg_opus(&f, 16_000);
        }
        let packets = encode_opus_packets(&speech(200), 16_000).unwrap();
        assert!(matches!(
            decode_opus_packets(&packets[..packets.len() - 3], 16_000),
            Err(AudioError::Truncated(_))
        ));
        assert!(decode_opus_packets(&[0x00], 16_000).is_err());
        assert!(decode_opus_packets(&[0x00, 0x00], 16_000).is_err());
        assert!(decode_ogg_opus(&file, 44_100).is_err(), "rate");
        assert!(matches!(
            decode(Codec::Other(0x80), &file, 16_000),
            Err(AudioError::UnsupportedCodec(_))
        ));
    }

    #[test]
    fn streaming_pushes_equal_one_push() {
        let input = speech(700);
        let mut e = OggOpusEncoder::new(16_000, 3).unwrap();
        for piece in input.chunks(123) {
            e.push(piece).unwrap();
        }
        assert_eq!(e.duration(), Duration::from_millis(700));
        let streamed = e.finish().unwrap();
        assert_eq!(streamed, encode_ogg_opus(&input, 16_000, 3).unwrap());
        assert_eq!(
            decode_ogg_opus(&streamed, 16_000).unwrap().len(),
            input.len()
        );
    }
}
