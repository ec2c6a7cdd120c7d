//! SCO links: the synchronous voice channel of a Hands-Free call.
//!
//! bluer has no SCO support, so the `linux` backend ([`crate::linux::sco`]) talks to the
//! kernel's `BTPROTO_SCO` sockets through libc. The `mock` backend ([`crate::mock::MockSco`])
//! carries SCO-sized packets over a `SOCK_SEQPACKET` socket pair, which keeps packet boundaries
//! as the kernel's SCO sockets do. Both hand out [`ScoLink`]s built on [`SeqpacketLink`].

pub(crate) mod fd;

use async_trait::async_trait;

pub use fd::SeqpacketLink;

use crate::Address;

/// How voice is carried over the air, chosen with the `BT_VOICE` socket option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AirMode {
    /// The controller codes CVSD; the host exchanges 8 kHz s16le PCM (`BT_VOICE_CVSD_16BIT`).
    Cvsd,
    /// The controller passes bytes through; the host codes mSBC (`BT_VOICE_TRANSPARENT`).
    Transparent,
}

impl AirMode {
    /// The `bt_voice.setting` value for this air mode.
    pub const fn voice_setting(self) -> u16 {
        match self {
            AirMode::Cvsd => BT_VOICE_CVSD_16BIT,
            AirMode::Transparent => BT_VOICE_TRANSPARENT,
        }
    }
}

/// `BT_VOICE_TRANSPARENT`: the controller does not code (mSBC and other wide-band codecs).
pub const BT_VOICE_TRANSPARENT: u16 = 0x0003;
/// `BT_VOICE_CVSD_16BIT`: the controller codes CVSD from 16-bit linear PCM (the default).
pub const BT_VOICE_CVSD_16BIT: u16 = 0x0060;

/// Opens SCO links for the Hands-Free role: outward to the phone or accepted from it.
///
/// Object safe: the daemon holds an `Arc<dyn ScoTransport>`.
#[async_trait]
pub trait ScoTransport: Send + Sync {
    /// Describes the backend, for logs.
    fn describe(&self) -> String;

    /// Connects an SCO link from `adapter` to `peer` in `mode`. Phones usually open the audio
    /// connection themselves; the HF connects only when it asks for audio (AT+BCC) and the
    /// phone expects it to.
    async fn connect(
        &self,
        adapter: Address,
        peer: Address,
        mode: AirMode,
    ) -> Result<Box<dyn ScoLink>, ScoError>;

    /// Listens for SCO links that phones open towards `adapter`.
    async fn listen(&self, adapter: Address) -> Result<Box<dyn ScoListener>, ScoError>;
}

/// A listening SCO socket.
#[async_trait]
pub trait ScoListener: Send {
    /// Waits for the next incoming link and accepts it in `mode`.
    ///
    /// The air mode is only known once the codec is negotiated (`+BCS`), so setup is
    /// deferred (`BT_DEFER_SETUP`): the link is taken from the queue, its air mode set, and
    /// only then is the connection accepted at the controller.
    async fn accept(&mut self, mode: AirMode) -> Result<Box<dyn ScoLink>, ScoError>;
}

/// One open SCO link. Packets keep their boundaries; a read returns one packet.
#[async_trait]
pub trait ScoLink: Send {
    /// The phone at the other end.
    fn peer(&self) -> Address;

    /// The air mode the link was set up with.
    fn air_mode(&self) -> AirMode;

    /// The largest packet the link accepts, from the kernel (`BT_SNDMTU` or `SCO_OPTIONS`).
    /// Received packets may be smaller; senders should use the size they receive.
    fn mtu(&self) -> usize;

    /// Sends one packet.
    async fn send(&mut self, packet: &[u8]) -> Result<(), ScoError>;

    /// Receives one packet into `buf` and returns its length; `Ok(0)` means the link closed.
    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ScoError>;
}

/// What can go wrong with an SCO link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoError {
    /// The kernel has no Bluetooth SCO support (no `bluetooth` module, or not Linux).
    #[error("the kernel has no Bluetooth SCO sockets: {0}")]
    Unsupported(#[source] std::io::Error),
    /// Connecting to the phone failed (out of range, refused, timed out).
    #[error("SCO connection to {peer} failed: {source}")]
    ConnectFailed {
        /// The phone.
        peer: Address,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// The controller cannot carry this air mode (no transparent SCO on old controllers).
    #[error("the controller refused air mode {mode:?}: {source}")]
    AirModeRefused {
        /// The air mode asked for.
        mode: AirMode,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// A packet larger than the link's MTU.
    #[error("SCO packet of {len} bytes exceeds the link MTU of {mtu}")]
    PacketTooLarge {
        /// The packet's length.
        len: usize,
        /// The link's MTU.
        mtu: usize,
    },
    /// The link or listener is gone (the other side closed it, or the test ended).
    #[error("the SCO link is closed")]
    Closed,
    /// Any other socket error.
    #[error("SCO socket error: {0}")]
    Io(#[from] std::io::Error),
}
