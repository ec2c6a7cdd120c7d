//! A mock SCO transport: SCO-sized packets over `SOCK_SEQPACKET` socket pairs.
//!
//! [`MockSco`] is the car's side (the [`ScoTransport`] the daemon uses); [`MockScoPhone`]
//! is the phone's side, which phone-sim and tests drive: it opens links towards the car
//! ([`MockScoPhone::connect`]) and takes the ones the car opens ([`MockScoPhone::accept`]).
//! The packet size of each link is chosen by whoever opens it, like a controller's SCO MTU.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Expectations, lock};
use crate::Address;
use crate::sco::{AirMode, ScoError, ScoLink, ScoListener, ScoTransport, SeqpacketLink};

/// Packet size of mock links unless told otherwise: an mSBC H2 packet.
pub const MOCK_SCO_MTU: usize = 60;

/// What a [`MockSco`] can be told to expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScoCall {
    /// `listen` on this adapter.
    Listen(Address),
    /// `connect` to this phone in this air mode.
    Connect(Address, AirMode),
    /// `accept` in this air mode.
    Accept(AirMode),
}

/// One end of a mock link before it is wrapped for tokio.
#[derive(Debug)]
struct Pending {
    fd: OwnedFd,
    peer: Address,
    mtu: usize,
}

/// The car side of the mock SCO transport.
#[derive(Debug)]
pub struct MockSco {
    /// Links the phone opened, waiting for `listen`/`accept`.
    incoming: Mutex<Option<mpsc::Receiver<Pending>>>,
    /// Where links the car opens go (the phone's `accept`).
    outgoing: mpsc::Sender<(Pending, AirMode)>,
    mtu: usize,
    expectations: Arc<Expectations<ScoCall>>,
}

/// The phone side of the mock SCO transport.
#[derive(Debug)]
pub struct MockScoPhone {
    address: Address,
    incoming: mpsc::Sender<Pending>,
    outgoing: tokio::sync::Mutex<mpsc::Receiver<(Pending, AirMode)>>,
}

impl MockSco {
    /// A transport pair for a phone at `phone`; links carry packets of up to `mtu` bytes.
    pub fn new(phone: Address, mtu: usize) -> (MockSco, MockScoPhone) {
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, out_rx) = mpsc::channel(4);
        (
            MockSco {
                incoming: Mutex::new(Some(in_rx)),
                outgoing: out_tx,
                mtu,
                expectations: Arc::new(Expectations::new("MockSco")),
            },
            MockScoPhone {
                address: phone,
                incoming: in_tx,
                outgoing: tokio::sync::Mutex::new(out_rx),
            },
        )
    }

    /// Expects a call, in order with the other expectations.
    pub fn expect(&self, call: ScoCall) {
        self.expectations.expect(call);
    }

    /// Panics if expectations remain.
    pub fn done(&self) {
        self.expectations.done();
    }
}

#[async_trait]
impl ScoTransport for MockSco {
    fn describe(&self) -> String {
        format!("mock SCO (SEQPACKET socket pairs, MTU {})", self.mtu)
    }

    async fn connect(
        &self,
        _adapter: Address,
        peer: Address,
        mode: AirMode,
    ) -> Result<Box<dyn ScoLink>, ScoError> {
        self.expectations
            .observe(|c| *c == ScoCall::Connect(peer, mode));
        let (car, phone) = seqpacket_pair()?;
        let pending = Pending {
            fd: phone,
            peer: Address::new([0; 6]),
            mtu: self.mtu,
        };
        self.outgoing
            .send((pending, mode))
            .await
            .map_err(|_| ScoError::ConnectFailed {
                peer,
                source: io::Error::from(io::ErrorKind::ConnectionRefused),
            })?;
        Ok(Box::new(SeqpacketLink::new(car, peer, mode, self.mtu)?))
    }

    async fn listen(&self, adapter: Address) -> Result<Box<dyn ScoListener>, ScoError> {
        self.expectations
            .observe(|c| *c == ScoCall::Listen(adapter));
        let rx = lock(&self.incoming).take().ok_or_else(|| {
            ScoError::Io(io::Error::new(
                io::ErrorKind::AddrInUse,
                "the mock SCO transport is already listening",
            ))
        })?;
        Ok(Box::new(MockScoListener {
            rx,
            expectations: Arc::clone(&self.expectations),
        }))
    }
}

/// Links the phone opened, accepted by the car.
#[derive(Debug)]
struct MockScoListener {
    rx: mpsc::Receiver<Pending>,
    expectations: Arc<Expectations<ScoCall>>,
}

#[async_trait]
impl ScoListener for MockScoListener {
    async fn accept(&mut self, mode: AirMode) -> Result<Box<dyn ScoLink>, ScoError> {
        self.expectations.observe(|c| *c == ScoCall::Accept(mode));
        let p = self.rx.recv().await.ok_or(ScoError::Closed)?;
        Ok(Box::new(SeqpacketLink::new(p.fd, p.peer, mode, p.mtu)?))
    }
}

impl MockScoPhone {
    /// Opens a link towards the car (which must be listening) with packets of up to `mtu`
    /// bytes, and returns the phone's end.
    pub async fn connect(&self, mode: AirMode, mtu: usize) -> Result<SeqpacketLink, ScoError> {
        let (car, phone) = seqpacket_pair()?;
        self.incoming
            .send(Pending {
                fd: car,
                peer: self.address,
                mtu,
            })
            .await
            .map_err(|_| ScoError::Closed)?;
        Ok(SeqpacketLink::new(phone, Address::new([0; 6]), mode, mtu)?)
    }

    /// Waits for the next link the car opens and returns the phone's end.
    pub async fn accept(&self) -> Result<SeqpacketLink, ScoError> {
        let (p, mode) = self
            .outgoing
            .lock()
            .await
            .recv()
            .await
            .ok_or(ScoError::Closed)?;
        Ok(SeqpacketLink::new(p.fd, p.peer, mode, p.mtu)?)
    }
}

/// A non-blocking `AF_UNIX`/`SOCK_SEQPACKET` pair: packet boundaries are kept, like SCO.
fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> Address {
        "AA:BB:CC:DD:EE:01".parse().unwrap()
    }

    fn adapter() -> Address {
        "00:1A:7D:DA:71:13".parse().unwrap()
    }

    #[tokio::test]
    async fn phone_opens_link_packets_keep_their_boundaries() {
        let (car, phone_side) = MockSco::new(phone(), MOCK_SCO_MTU);
        car.expect(ScoCall::Listen(adapter()));
        car.expect(ScoCall::Accept(AirMode::Transparent));
        let mut listener = car.listen(adapter()).await.unwrap();
        let mut ph = phone_side.connect(AirMode::Transparent, 24).await.unwrap();
        let mut link = listener.accept(AirMode::Transparent).await.unwrap();
        assert_eq!(link.peer(), phone());
        assert_eq!(link.air_mode(), AirMode::Transparent);
        assert_eq!(link.mtu(), 24);

        // Three SCO-sized packets from the phone arrive as three packets.
        for i in 0..3u8 {
            ph.send(&[i; 24]).await.unwrap();
        }
        let mut buf = [0u8; 256];
        for i in 0..3u8 {
            let n = link.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i; 24]);
        }
        // And back.
        link.send(&[7; 24]).await.unwrap();
        let n = ph.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &[7; 24]);
        // The MTU is enforced.
        assert!(matches!(
            link.send(&[0; 25]).await,
            Err(ScoError::PacketTooLarge { len: 25, mtu: 24 })
        ));
        // Closing one end reads as 0 at the other.
        drop(ph);
        assert_eq!(link.recv(&mut buf).await.unwrap(), 0);
        car.done();
    }

    #[tokio::test]
    async fn car_opens_link_phone_accepts() {
        let (car, phone_side) = MockSco::new(phone(), MOCK_SCO_MTU);
        car.expect(ScoCall::Connect(phone(), AirMode::Cvsd));
        let mut link = car
            .connect(adapter(), phone(), AirMode::Cvsd)
            .await
            .unwrap();
        let mut ph = phone_side.accept().await.unwrap();
        assert_eq!(ph.air_mode(), AirMode::Cvsd);
        assert_eq!(link.mtu(), MOCK_SCO_MTU);
        link.send(&[1, 2, 3, 4]).await.unwrap();
        let mut buf = [0u8; 64];
        let n = ph.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &[1, 2, 3, 4]);
        car.done();
    }

    #[tokio::test]
    async fn second_listen_is_refused() {
        let (car, _phone) = MockSco::new(phone(), MOCK_SCO_MTU);
        let _l = car.listen(adapter()).await.unwrap();
        assert!(car.listen(adapter()).await.is_err());
    }

    #[tokio::test]
    #[should_panic(expected = "expectation(s) not met")]
    async fn unmet_expectation_fails_on_drop() {
        let (car, _phone) = MockSco::new(phone(), MOCK_SCO_MTU);
        car.expect(ScoCall::Listen(adapter()));
    }
}
