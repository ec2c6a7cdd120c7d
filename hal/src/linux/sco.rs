//! SCO links over the kernel's `BTPROTO_SCO` sockets, through libc (bluer has none).
//!
//! Outgoing: `socket(AF_BLUETOOTH, SOCK_SEQPACKET, BTPROTO_SCO)`, `bind` to the adapter,
//! `setsockopt(SOL_BLUETOOTH, BT_VOICE)`, non-blocking `connect` to the phone.
//! Incoming: a listening socket with `BT_DEFER_SETUP`; each accepted socket gets its
//! `BT_VOICE` and is then accepted at the controller by a first `recv`, as BlueZ's own tools
//! and oFono do. Needs the kernel's `bluetooth` module; no capability beyond what bluetoothd's
//! D-Bus policy already grants (SCO sockets are unprivileged).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use async_trait::async_trait;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::Address;
use crate::sco::fd::register;
use crate::sco::{AirMode, ScoError, ScoLink, ScoListener, ScoTransport, SeqpacketLink};

/// `AF_BLUETOOTH`.
pub const AF_BLUETOOTH: libc::c_int = 31;
/// `BTPROTO_SCO`.
pub const BTPROTO_SCO: libc::c_int = 2;
/// `SOL_BLUETOOTH`.
pub const SOL_BLUETOOTH: libc::c_int = 274;
/// `BT_DEFER_SETUP`: accept() returns before the controller accepts the link.
pub const BT_DEFER_SETUP: libc::c_int = 7;
/// `BT_VOICE`: the air mode (`struct bt_voice`).
pub const BT_VOICE: libc::c_int = 11;
/// `BT_SNDMTU` (Linux 5.x+ for SCO).
pub const BT_SNDMTU: libc::c_int = 12;
/// `SOL_SCO`.
pub const SOL_SCO: libc::c_int = 17;
/// `SCO_OPTIONS` (`struct sco_options`, the MTU on older kernels).
pub const SCO_OPTIONS: libc::c_int = 0x01;

/// `struct sockaddr_sco` from `<bluetooth/sco.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockaddrSco {
    /// `AF_BLUETOOTH`.
    pub sco_family: libc::sa_family_t,
    /// The address, least significant byte first (`bdaddr_t`).
    pub sco_bdaddr: [u8; 6],
}

impl SockaddrSco {
    /// The socket address of `addr`: bytes reversed into HCI order.
    pub fn new(addr: Address) -> Self {
        let mut b = addr.octets();
        b.reverse();
        Self {
            sco_family: AF_BLUETOOTH as libc::sa_family_t,
            sco_bdaddr: b,
        }
    }

    /// The address this socket address holds.
    pub fn address(&self) -> Address {
        let mut b = self.sco_bdaddr;
        b.reverse();
        Address::new(b)
    }
}

/// `struct bt_voice` from `<bluetooth/bluetooth.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtVoice {
    /// `BT_VOICE_CVSD_16BIT` (0x0060) or `BT_VOICE_TRANSPARENT` (0x0003).
    pub setting: u16,
}

impl From<AirMode> for BtVoice {
    fn from(mode: AirMode) -> Self {
        BtVoice {
            setting: mode.voice_setting(),
        }
    }
}

/// The kernel's SCO sockets.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelSco;

impl KernelSco {
    /// The kernel SCO transport (nothing is opened until used).
    pub fn new() -> Self {
        KernelSco
    }
}

#[async_trait]
impl ScoTransport for KernelSco {
    fn describe(&self) -> String {
        "kernel BTPROTO_SCO sockets".to_owned()
    }

    async fn connect(
        &self,
        adapter: Address,
        peer: Address,
        mode: AirMode,
    ) -> Result<Box<dyn ScoLink>, ScoError> {
        let fd = sco_socket()?;
        bind(&fd, adapter)?;
        set_voice(&fd, mode)?;
        let addr = SockaddrSco::new(peer);
        // SAFETY: `addr` is a valid sockaddr_sco of the length passed.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                size_of::<SockaddrSco>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(ScoError::ConnectFailed { peer, source: e });
            }
        }
        let afd = register(fd, Interest::WRITABLE)?;
        afd.writable().await?.retain_ready();
        let err: libc::c_int =
            getsockopt(afd.get_ref().as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR)?;
        if err != 0 {
            return Err(ScoError::ConnectFailed {
                peer,
                source: io::Error::from_raw_os_error(err),
            });
        }
        let fd = afd.into_inner();
        let mtu = mtu(fd.as_raw_fd());
        Ok(Box::new(SeqpacketLink::new(fd, peer, mode, mtu)?))
    }

    async fn listen(&self, adapter: Address) -> Result<Box<dyn ScoListener>, ScoError> {
        let fd = sco_socket()?;
        bind(&fd, adapter)?;
        setsockopt(&fd, SOL_BLUETOOTH, BT_DEFER_SETUP, &1u32)?;
        // SAFETY: plain syscall on an open socket.
        if unsafe { libc::listen(fd.as_raw_fd(), 1) } < 0 {
            return Err(io::Error::last_os_error().into());
        }
        Ok(Box::new(KernelScoListener {
            fd: register(fd, Interest::READABLE)?,
        }))
    }
}

/// A listening kernel SCO socket with deferred setup.
#[derive(Debug)]
pub struct KernelScoListener {
    fd: AsyncFd<OwnedFd>,
}

#[async_trait]
impl ScoListener for KernelScoListener {
    async fn accept(&mut self, mode: AirMode) -> Result<Box<dyn ScoLink>, ScoError> {
        let (fd, peer) = loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| accept(fd.as_raw_fd())) {
                Ok(res) => break res?,
                Err(_would_block) => continue,
            }
        };
        set_voice(&fd, mode)?;
        // With BT_DEFER_SETUP the controller accepts the link on the first read, which
        // returns at once without data.
        let mut byte = 0u8;
        // SAFETY: one writable byte; the socket is non-blocking.
        let n = unsafe { libc::recv(fd.as_raw_fd(), (&raw mut byte).cast(), 1, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EAGAIN) {
                return Err(ScoError::AirModeRefused { mode, source: e });
            }
        }
        let afd = register(fd, Interest::WRITABLE)?;
        afd.writable().await?.retain_ready();
        let fd = afd.into_inner();
        let mtu = mtu(fd.as_raw_fd());
        Ok(Box::new(SeqpacketLink::new(fd, peer, mode, mtu)?))
    }
}

/// A non-blocking, close-on-exec SCO socket.
fn sco_socket() -> Result<OwnedFd, ScoError> {
    // SAFETY: plain syscall.
    let raw = unsafe {
        libc::socket(
            AF_BLUETOOTH,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            BTPROTO_SCO,
        )
    };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT) => ScoError::Unsupported(e),
            _ => ScoError::Io(e),
        });
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn bind(fd: &OwnedFd, adapter: Address) -> Result<(), ScoError> {
    let addr = SockaddrSco::new(adapter);
    // SAFETY: `addr` is a valid sockaddr_sco of the length passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            size_of::<SockaddrSco>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(())
}

fn set_voice(fd: &OwnedFd, mode: AirMode) -> Result<(), ScoError> {
    setsockopt(fd, SOL_BLUETOOTH, BT_VOICE, &BtVoice::from(mode))
        .map_err(|source| ScoError::AirModeRefused { mode, source })
}

fn accept(listener: RawFd) -> io::Result<(OwnedFd, Address)> {
    let mut addr = SockaddrSco {
        sco_family: 0,
        sco_bdaddr: [0; 6],
    };
    let mut len = size_of::<SockaddrSco>() as libc::socklen_t;
    // SAFETY: `addr` is writable for `len` bytes; the kernel writes at most that.
    let raw = unsafe {
        libc::accept4(
            listener,
            (&raw mut addr).cast::<libc::sockaddr>(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(raw) }, addr.address()))
}

/// The link's send MTU: `BT_SNDMTU` where the kernel has it for SCO, else `SCO_OPTIONS`;
/// 0 if neither answers (then packets are not checked against it).
fn mtu(fd: RawFd) -> usize {
    if let Ok(mtu) = getsockopt::<u16>(fd, SOL_BLUETOOTH, BT_SNDMTU) {
        return usize::from(mtu);
    }
    getsockopt::<u16>(fd, SOL_SCO, SCO_OPTIONS).map_or(0, usize::from)
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a plain-integer socket option.
fn getsockopt<T: Copy + Default>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut value = T::default();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes; the kernel writes at most that.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_sco_is_hci_byte_order() {
        let addr: Address = "00:1A:7D:DA:71:13".parse().unwrap();
        let sa = SockaddrSco::new(addr);
        assert_eq!(size_of::<SockaddrSco>(), 8);
        assert_eq!(sa.sco_family, 31);
        assert_eq!(sa.sco_bdaddr, [0x13, 0x71, 0xDA, 0x7D, 0x1A, 0x00]);
        assert_eq!(sa.address(), addr);
        // The raw bytes the kernel reads: family (host order), then bdaddr.
        // SAFETY: SockaddrSco is plain old data of 8 bytes.
        let raw: [u8; 8] = unsafe { std::mem::transmute(sa) };
        assert_eq!(&raw[2..], &[0x13, 0x71, 0xDA, 0x7D, 0x1A, 0x00]);
        assert_eq!(u16::from_ne_bytes([raw[0], raw[1]]), 31);
    }

    #[test]
    fn bt_voice_settings() {
        assert_eq!(size_of::<BtVoice>(), 2);
        assert_eq!(BtVoice::from(AirMode::Transparent).setting, 0x0003);
        assert_eq!(BtVoice::from(AirMode::Cvsd).setting, 0x0060);
    }

    #[tokio::test]
    async fn listen_without_bluetooth_is_unsupported_not_a_panic() {
        let adapter: Address = "00:00:00:00:00:00".parse().unwrap();
        match KernelSco::new().listen(adapter).await {
            // A machine with Bluetooth (or at least the module) gets a listener.
            Ok(_) => {}
            Err(ScoError::Unsupported(_) | ScoError::Io(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}
