//! How a served connection meets HTTP/2: [`Batched`].
//!
//! h2 copies a DATA frame's payload into its write buffer, beside other
//! streams' frames, when the payload is under a threshold; a larger payload
//! is kept apart, and h2 must write it out (and flush) before it can buffer
//! another frame of any stream. The threshold is 256 bytes on a connection
//! that reports vectored writes (a TCP or TLS stream does) and 1,024 bytes
//! on one that does not. Most of this API's answers are 256-1,023 bytes (a
//! Promise is about 400): with the lower threshold each cost its connection
//! a write and a flush of its own, its trailers waiting behind it, and
//! Promise's floor fell from Health/Check's rate to 0.7-0.85 of it
//! (`benches/grpc_load.rs`, `SPARES_LOAD_ONLY=sizes`).
//!
//! [`Batched`] reports no vectored writes, so the threshold is 1,024 bytes,
//! and holds what it is given (up to [`HOLD_BYTES`]) until a flush or until
//! the next write would pass that bound; then the held bytes and the new
//! ones go out in one vectored write. So a large payload that h2 keeps
//! apart still leaves in one system call with the frame head before it, as
//! it did with vectored writes reported.
//!
//! Nothing held outlives a flush: `poll_flush` and `poll_shutdown` write
//! out every held byte before they flush or shut the stream, and h2 flushes
//! after every batch of frames it writes.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Bytes a connection holds before it writes them out (one h2 frame).
pub const HOLD_BYTES: usize = 16 * 1024;

/// A served connection that reports no vectored writes and sends what it is
/// given in as few writes as it can; see the module docs.
#[derive(Debug)]
pub struct Batched<IO> {
    io: IO,
    held: Vec<u8>,
}

impl<IO> Batched<IO> {
    /// Wraps an accepted (plain or TLS) connection.
    pub fn new(io: IO) -> Self {
        Self {
            io,
            held: Vec::new(),
        }
    }

    /// The connection itself.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncWrite + Unpin> Batched<IO> {
    /// Writes out every held byte.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: Connected> Connected for Batched<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Batched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Batched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.len() + data.len() <= HOLD_BYTES {
            this.held.extend_from_slice(data);
            return Poll::Ready(Ok(data.len()));
        }
        // The held bytes and these, in one write if the stream takes it. A
        // write that ends inside the held bytes loops; one that reaches into
        // `data` reports how far.
        while !this.held.is_empty() {
            let bufs = [IoSlice::new(&this.held), IoSlice::new(data)];
            let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, &bufs))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n < this.held.len() {
                this.held.drain(..n);
                continue;
            }
            let of_data = n - this.held.len();
            this.held.clear();
            if of_data > 0 {
                return Poll::Ready(Ok(of_data));
            }
        }
        if data.len() <= HOLD_BYTES {
            this.held.extend_from_slice(data);
            return Poll::Ready(Ok(data.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::{Batched, HOLD_BYTES};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tonic::transport::server::Connected;

    /// A stream that takes at most `most` bytes a call, answers every
    /// third call `Pending` (waking at once), and counts its writes.
    struct Stingy {
        got: Vec<u8>,
        most: usize,
        calls: u64,
        writes: u64,
        vectored: u64,
        flushes: u64,
    }

    impl Stingy {
        fn turn(&mut self, cx: &mut Context<'_>) -> bool {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                cx.waker().wake_by_ref();
                return false;
            }
            true
        }
    }

    impl AsyncWrite for Stingy {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if !self.turn(cx) {
                return Poll::Pending;
            }
            let n = buf.len().min(self.most);
            self.got.extend_from_slice(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            if !self.turn(cx) {
                return Poll::Pending;
            }
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.most - n);
                self.got.extend_from_slice(&buf[..take]);
                n += take;
            }
            self.writes += 1;
            self.vectored += 1;
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Polls until ready, as a task woken at once would be.
    fn block<T>(mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>) -> T {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(value) = poll(&mut cx) {
                return value;
            }
        }
    }

    /// Writes `data` whole through `batched`, as h2 does (honouring the
    /// count each write returns).
    fn write_all(batched: &mut Batched<Stingy>, data: &[u8]) {
        let mut sent = 0;
        while sent < data.len() {
            let n = block(|cx| Pin::new(&mut *batched).poll_write(cx, &data[sent..])).unwrap();
            assert!(n > 0, "a write took nothing");
            sent += n;
        }
    }

    #[test]
    fn every_byte_arrives_in_order_by_the_flush_however_the_stream_takes_them() {
        let mut rng = StdRng::seed_from_u64(29);
        for most in [1, 7, 300, 1500, HOLD_BYTES, 4 * HOLD_BYTES] {
            let mut batched = Batched::new(Stingy {
                got: Vec::new(),
                most,
                calls: 0,
                writes: 0,
                vectored: 0,
                flushes: 0,
            });
            let mut sent = Vec::new();
            for round in 0..60u32 {
                for _ in 0..rng.random_range(1..6) {
                    let len = match rng.random_range(0..4) {
                        0 => rng.random_range(1..64),
                        1 => rng.random_range(64..2_000),
                        2 => rng.random_range(2_000..HOLD_BYTES + 10),
                        _ => rng.random_range(HOLD_BYTES..3 * HOLD_BYTES),
                    };
                    let data: Vec<u8> = (0..len).map(|i| (i as u32 ^ round) as u8).collect();
                    write_all(&mut batched, &data);
                    sent.extend_from_slice(&data);
                }
                block(|cx| Pin::new(&mut batched).poll_flush(cx)).unwrap();
                assert_eq!(
                    batched.get_ref().got,
                    sent,
                    "after flush {round}, taking at most {most} bytes a write"
                );
            }
            block(|cx| Pin::new(&mut batched).poll_shutdown(cx)).unwrap();
            assert_eq!(batched.get_ref().got, sent);
        }
    }

    #[test]
    fn small_writes_wait_for_the_flush_and_a_large_one_leaves_with_them_in_one_write() {
        let mut batched = Batched::new(Stingy {
            got: Vec::new(),
            most: usize::MAX,
            calls: 0,
            writes: 0,
            vectored: 0,
            flushes: 0,
        });
        // Frames h2 would have copied into its buffer: held, not written.
        write_all(&mut batched, &[1; 400]);
        write_all(&mut batched, &[2; 600]);
        assert_eq!(batched.get_ref().writes, 0);
        block(|cx| Pin::new(&mut batched).poll_flush(cx)).unwrap();
        assert_eq!(batched.get_ref().writes, 1, "one write for both");
        assert_eq!(batched.get_ref().got.len(), 1_000);
        // A frame head and the payload h2 kept apart: one vectored write.
        write_all(&mut batched, &[3; 1_033]);
        write_all(&mut batched, &[4; HOLD_BYTES]);
        assert_eq!(batched.get_ref().writes, 2);
        assert_eq!(batched.get_ref().vectored, 1);
        block(|cx| Pin::new(&mut batched).poll_flush(cx)).unwrap();
        assert_eq!(batched.get_ref().writes, 2, "nothing was left held");
        assert_eq!(batched.get_ref().got.len(), 1_000 + 1_033 + HOLD_BYTES);
        assert_eq!(batched.get_ref().flushes, 2);
    }

    #[tokio::test]
    async fn a_served_connection_reports_no_vectored_writes_and_passes_everything_through() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(
            AsyncWrite::is_write_vectored(&accepted),
            "a TCP stream reports vectored writes, which is what the wrapper hides"
        );
        let client_addr = client.local_addr().unwrap();
        let mut served = Batched::new(accepted);
        assert!(!AsyncWrite::is_write_vectored(&served));
        // The connection's details are the stream's (the access log's peer).
        assert_eq!(served.connect_info().remote_addr(), Some(client_addr));
        let big = vec![7u8; 3 * HOLD_BYTES];
        served.write_all(b"head ").await.unwrap();
        served.write_all(&big).await.unwrap();
        served.write_all(b" tail").await.unwrap();
        served.flush().await.unwrap();
        served.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let mut want = b"head ".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b" tail");
        assert_eq!(got, want);
        client.write_all(b"reply").await.unwrap();
        drop(client);
        let mut back = Vec::new();
        served.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"reply");
    }
}
