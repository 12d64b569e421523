//! What Linux measures itself, so that a figure we export is the network's
//! and not our own scheduling: the TCP handshake's RTT from `TCP_INFO`, and
//! the arrival time of received data from `SO_TIMESTAMPNS`.
//!
//! For locating a censor ([`limit_hops`], [`expired_at`]): an IP TTL on a
//! socket and the ICMP time exceeded that comes back.
//!
//! The only module with `unsafe` code: the system calls the safe crates
//! we use do not wrap (`getsockopt(TCP_INFO)`, `setsockopt` of
//! `SO_TIMESTAMPNS`, `IP_RECVERR` and `IP_TTL`, and `recvmsg` with its
//! control messages). Each call has its SAFETY note.
#![allow(unsafe_code)]

use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// The SYN → SYN-ACK time the kernel measured for a connected socket, or
/// `None` when it cannot stand for the connect: `TCP_INFO` failed, the SYN
/// was sent again (the kernel's RTT then counts from a retransmission, or
/// from the timestamp a retransmission echoed, not from the first SYN), or
/// no sample was taken.
pub fn handshake_rtt(stream: &TcpStream) -> Option<Duration> {
    let info = tcp_info(stream.as_raw_fd()).ok()?;
    (info.tcpi_total_retrans == 0 && info.tcpi_rtt > 0)
        .then(|| Duration::from_micros(info.tcpi_rtt.into()))
}

/// What the kernel counted on a TCP connection so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpCounters {
    /// Bytes we sent that the peer acknowledged (`tcpi_bytes_acked`).
    pub bytes_acked: u64,
    /// Segments sent, retransmissions and pure ACKs included
    /// (`tcpi_segs_out`): what a censor counting packets from us sees.
    pub segs_out: u32,
    /// Segments received, pure ACKs included (`tcpi_segs_in`).
    pub segs_in: u32,
}

/// The counters of the connection on `fd`, or `None` when `TCP_INFO` fails
/// or the kernel is too old to fill them (before 4.2).
pub fn tcp_counters(fd: RawFd) -> Option<TcpCounters> {
    let (info, len) = tcp_info_len(fd).ok()?;
    (len >= mem::offset_of!(libc::tcp_info, tcpi_segs_in) + 4).then_some(TcpCounters {
        bytes_acked: info.tcpi_bytes_acked,
        segs_out: info.tcpi_segs_out,
        segs_in: info.tcpi_segs_in,
    })
}

fn tcp_info(fd: RawFd) -> io::Result<libc::tcp_info> {
    let (info, len) = tcp_info_len(fd)?;
    // tcpi_rtt and tcpi_total_retrans lie in the first 104 bytes, which
    // every kernel since 2.6 fills.
    if len < mem::offset_of!(libc::tcp_info, tcpi_total_retrans) + 4 {
        return Err(io::Error::other("short TCP_INFO"));
    }
    Ok(info)
}

/// `TCP_INFO` and how many of its bytes the kernel filled.
fn tcp_info_len(fd: RawFd) -> io::Result<(libc::tcp_info, usize)> {
    // SAFETY: tcp_info is plain integers: all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a live, writable tcp_info of `len` bytes; the kernel
    // writes at most `len` bytes and stores how many in `len`. An older
    // kernel writing fewer leaves the rest zero.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((info, len as usize))
}

/// Keeps the kernel's receive stamping switched on for the life of the
/// process, so that it is on before a check's first packet arrives.
///
/// Linux stamps received packets only while some socket asks for it, and
/// switches stamping on for the whole system a moment *after* the first
/// socket asks (deferred work): a lone handshake's packets could arrive
/// unstamped. One idle UDP socket that asks, opened once, keeps it on.
/// Without it a handshake is still timed, by our own clock.
pub fn keep_stamping() {
    static KEEPER: OnceLock<Option<std::net::UdpSocket>> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
        enable_stamps(socket.as_raw_fd()).ok()?;
        Some(socket)
    });
}

/// `setsockopt(SO_TIMESTAMPNS, 1)`.
fn enable_stamps(fd: RawFd) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// `setsockopt(level, name, value)` for an option that is an int.
fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends what `fd` sends from now on with `hops` as its IP TTL (IPv6: hop
/// limit), and has the kernel report ICMP errors (`IP_RECVERR`): a router's
/// time exceeded then fails a TCP socket with `EHOSTUNREACH` at once, and
/// queues the router's address on a UDP socket's error queue
/// ([`expired_at`]). Without `IP_RECVERR` the error stays soft on a TCP
/// socket: the probe would see only silence. No privilege is needed.
pub fn limit_hops(fd: RawFd, v6: bool, hops: u8) -> io::Result<()> {
    let hops = libc::c_int::from(hops);
    match v6 {
        false => {
            set_int(fd, libc::SOL_IP, libc::IP_RECVERR, 1)?;
            set_int(fd, libc::SOL_IP, libc::IP_TTL, hops)
        }
        true => {
            set_int(fd, libc::SOL_IPV6, libc::IPV6_RECVERR, 1)?;
            set_int(fd, libc::SOL_IPV6, libc::IPV6_UNICAST_HOPS, hops)
        }
    }
}

/// An ICMP error queued on a socket with `IP_RECVERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmp {
    /// Time exceeded, from the router at this address (if the kernel
    /// queued it).
    Expired(Option<std::net::IpAddr>),
    /// Another error: the packet reached its host (port unreachable), or
    /// was refused on the way.
    Other,
}

/// The first ICMP error on `fd`'s error queue (`IP_RECVERR`), taken off
/// it; `None` when the queue is empty. Never blocks.
pub fn expired_at(fd: RawFd) -> io::Result<Option<Icmp>> {
    let recverr = |level, kind, data: *const u8| {
        let ours = (level, kind) == (libc::SOL_IP, libc::IP_RECVERR)
            || (level, kind) == (libc::SOL_IPV6, libc::IPV6_RECVERR);
        ours.then(|| {
            // SAFETY: an IP(V6)_RECVERR message's data is a
            // sock_extended_err followed by the offender's sockaddr, which
            // SO_EE_OFFENDER points at; both lie inside the control buffer
            // (read unaligned: it gives no alignment guarantee).
            let (ee, offender) = unsafe {
                let ee = data.cast::<libc::sock_extended_err>();
                (std::ptr::read_unaligned(ee), libc::SO_EE_OFFENDER(ee))
            };
            match (ee.ee_origin, ee.ee_type) {
                (libc::SO_EE_ORIGIN_ICMP, 11) | (libc::SO_EE_ORIGIN_ICMP6, 3) => {
                    // SAFETY: `offender` points inside the buffer (above).
                    Icmp::Expired(unsafe { sockaddr_ip(offender) })
                }
                _ => Icmp::Other,
            }
        })
    };
    let mut data = [0u8; 64];
    match recv_control(
        fd,
        &mut data,
        libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        recverr,
    ) {
        Ok((_, icmp)) => Ok(Some(icmp.unwrap_or(Icmp::Other))),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// The IP address of a socket address the kernel wrote.
///
/// # Safety
/// `sa` points at a sockaddr_in or a sockaddr_in6 (as its family says), or
/// at an unspecified family (`AF_UNSPEC`: no offender).
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<std::net::IpAddr> {
    // SAFETY: the caller's promise; read unaligned, as above.
    unsafe {
        match libc::c_int::from(std::ptr::read_unaligned(sa).sa_family) {
            libc::AF_INET => {
                let a = std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in>());
                Some(std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)).into())
            }
            libc::AF_INET6 => {
                let a = std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in6>());
                Some(std::net::Ipv6Addr::from(a.sin6_addr.s6_addr).into())
            }
            _ => None,
        }
    }
}

/// A TCP stream that notes when we first wrote to it and when the kernel
/// received the data we last read from it (`SO_TIMESTAMPNS`), so that a
/// handshake over it can be timed from the first byte handed to the kernel
/// to the arrival of the last byte it needed — without the time our task
/// took to be woken and to compute.
#[derive(Debug)]
pub struct Stamped {
    inner: TcpStream,
    first_write: Option<(tokio::time::Instant, SystemTime)>,
    last_arrival: Option<SystemTime>,
}

impl Stamped {
    /// Wraps `inner`, asking the kernel to stamp what it receives. If the
    /// socket refuses, nothing is stamped and [`Stamped::network_time`] is
    /// `None`: the caller's own clock stands in.
    pub fn new(inner: TcpStream) -> Self {
        keep_stamping();
        if let Err(error) = enable_stamps(inner.as_raw_fd()) {
            tracing::debug!(%error, "SO_TIMESTAMPNS refused");
        }
        Stamped {
            inner,
            first_write: None,
            last_arrival: None,
        }
    }

    /// From the first write to the arrival of the last data read, as the
    /// kernel stamped it. `None` before both happened, or when the two
    /// clocks disagree (the wall clock stepped: the stamp is wall-clock
    /// time), in which case the caller falls back to its own clock.
    pub fn network_time(&self) -> Option<Duration> {
        let (mono, wall) = self.first_write?;
        let took = self.last_arrival?.duration_since(wall).ok()?;
        // Whatever arrived was read by now: a longer span means a clock step.
        (took <= mono.elapsed()).then_some(took)
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.inner.poll_read_ready(cx))?;
            let fd = this.inner.as_raw_fd();
            let unfilled = buf.initialize_unfilled();
            match this
                .inner
                .try_io(Interest::READABLE, || recv_stamped(fd, unfilled))
            {
                Ok((n, arrival)) => {
                    if n > 0 && arrival.is_some() {
                        this.last_arrival = arrival;
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale: try_io cleared it; wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.first_write.is_none() && !buf.is_empty() {
            this.first_write = Some((tokio::time::Instant::now(), SystemTime::now()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// One `recvmsg`: the bytes read and the kernel's receive stamp of the last
/// segment they came from.
fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    let stamp = |level, kind, data: *const u8| {
        if (level, kind) != (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) {
            return None;
        }
        // SAFETY: an SCM_TIMESTAMPNS message carries one timespec after its
        // header; it may be unaligned, hence read_unaligned.
        let ts: libc::timespec = unsafe { std::ptr::read_unaligned(data.cast()) };
        let (s, ns) = (
            u64::try_from(ts.tv_sec).ok()?,
            u32::try_from(ts.tv_nsec).ok()?,
        );
        Some(UNIX_EPOCH + Duration::new(s, ns))
    };
    // The socket is non-blocking (tokio's).
    recv_control(fd, buf, 0, stamp)
}

/// One `recvmsg(fd, flags)` into `buf`: the bytes read, and what `pick`
/// makes of the first control message it takes (it is handed each
/// message's level, type and data, until it returns `Some`). `pick` reads
/// at the data pointer only what a message of that level and type carries.
fn recv_control<T>(
    fd: RawFd,
    buf: &mut [u8],
    flags: libc::c_int,
    mut pick: impl FnMut(libc::c_int, libc::c_int, *const u8) -> Option<T>,
) -> io::Result<(usize, Option<T>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for the control messages we ask for, aligned for cmsghdr.
    let mut control = [0u64; 64];
    // SAFETY: msghdr is pointers and integers: all zeroes is a valid value
    // (no name, no iovecs, no control buffer) before we fill it in.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (which covers `buf`, writable for its
    // length) and at `control` (writable for msg_controllen bytes); all
    // three outlive the call.
    let n = unsafe { libc::recvmsg(fd, &raw mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = None;
    // SAFETY: `msg` is the header recvmsg filled in; CMSG_FIRSTHDR and
    // CMSG_NXTHDR stay within its msg_controllen bytes of `control`, and
    // return null past the last message.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !cmsg.is_null() && found.is_none() {
        // SAFETY: `cmsg` is non-null and points at a header inside
        // `control`, its data right after it.
        let (header, data) = unsafe { (&*cmsg, libc::CMSG_DATA(cmsg).cast_const()) };
        found = pick(header.cmsg_level, header.cmsg_type, data);
        // SAFETY: as for CMSG_FIRSTHDR: `msg` and `cmsg` are valid.
        cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
    }
    Ok((n as usize, found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// The kernel's connect RTT does not grow with the time we take to ask
    /// for it: a task that is late by 60 ms still reports the loopback
    /// handshake's few microseconds.
    #[tokio::test]
    async fn handshake_rtt_excludes_our_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let start = std::time::Instant::now();
        let stream = TcpStream::connect(addr).await.unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let rtt = handshake_rtt(&stream).expect("a first SYN answered: an RTT sample");
        let wall = start.elapsed();
        assert!(wall >= Duration::from_millis(60));
        assert!(rtt < Duration::from_millis(5), "rtt {rtt:?}");
        assert!(rtt > Duration::ZERO);
    }

    /// Data that arrived while we were busy is stamped with its arrival:
    /// the echo of a write comes back in microseconds though we read it
    /// 60 ms later.
    #[tokio::test]
    async fn network_time_is_the_arrival_not_the_read() {
        // A blocking echo server on its own thread: it answers while the
        // test's (only) runtime thread sleeps.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
            // Hold the connection until the client has read and closed.
            let _ = s.read(&mut b);
        });
        // As the exporter does when it loads a config: stamping is on before
        // the connection opens.
        keep_stamping();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut stream = Stamped::new(TcpStream::connect(addr).await.unwrap());
        assert_eq!(stream.network_time(), None, "nothing written or read yet");
        stream.write_all(b"hello").await.unwrap();
        let written = std::time::Instant::now();
        // The echo arrives while this thread sleeps.
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(stream.network_time(), None, "nothing read yet");
        let mut back = [0u8; 5];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        let took = stream.network_time().expect("a stamped read");
        assert!(written.elapsed() >= Duration::from_millis(60));
        assert!(took < Duration::from_millis(30), "took {took:?}");
        drop(stream);
        server.join().unwrap();
    }
}
