//! A packet socket (kernel SCO, or a `SOCK_SEQPACKET` pair in the mock) driven by tokio.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use async_trait::async_trait;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::{AirMode, ScoError, ScoLink};
use crate::Address;

/// An [`ScoLink`] over any non-blocking packet socket: one `send`/`recv` per packet.
#[derive(Debug)]
pub struct SeqpacketLink {
    fd: AsyncFd<OwnedFd>,
    peer: Address,
    mode: AirMode,
    mtu: usize,
}

impl SeqpacketLink {
    /// Wraps a connected, non-blocking packet socket. Needs a tokio runtime with I/O enabled.
    pub fn new(fd: OwnedFd, peer: Address, mode: AirMode, mtu: usize) -> io::Result<Self> {
        Ok(Self {
            fd: register(fd, Interest::READABLE | Interest::WRITABLE)?,
            peer,
            mode,
            mtu,
        })
    }
}

#[async_trait]
impl ScoLink for SeqpacketLink {
    fn peer(&self) -> Address {
        self.peer
    }

    fn air_mode(&self) -> AirMode {
        self.mode
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    async fn send(&mut self, packet: &[u8]) -> Result<(), ScoError> {
        if self.mtu != 0 && packet.len() > self.mtu {
            return Err(ScoError::PacketTooLarge {
                len: packet.len(),
                mtu: self.mtu,
            });
        }
        loop {
            let mut guard = self.fd.writable().await?;
            let res = guard.try_io(|fd| {
                // SAFETY: `packet` is a live buffer of `packet.len()` bytes; the fd is open.
                let n = unsafe {
                    libc::send(
                        fd.as_raw_fd(),
                        packet.as_ptr().cast(),
                        packet.len(),
                        libc::MSG_NOSIGNAL,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if is_closed(&e) => return Err(ScoError::Closed),
                Ok(Err(e)) => return Err(ScoError::Io(e)),
                Err(_would_block) => continue,
            }
        }
    }

    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ScoError> {
        loop {
            let mut guard = self.fd.readable().await?;
            let res = guard.try_io(|fd| {
                // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes; the fd is open.
                let n =
                    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if is_closed(&e) => return Ok(0),
                Ok(Err(e)) => return Err(ScoError::Io(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Registers `fd` with tokio's reactor.
pub(crate) fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is a valid open descriptor that stays open, and keeps returning the
    // same number, for as long as the `AsyncFd` owns it.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(io::Error::from)
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::ESHUTDOWN)
    )
}
