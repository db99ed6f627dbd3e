//! Fewer writes per connection for clients that open a connection per request (EVE devices):
//! what the server writes is held and sent when the connection would wait for the client (a
//! read that would block), when it is shut down, or when the held bytes reach a bound; after
//! a TLS 1.3 handshake, the session ticket waits for the response
//! ([`Coalesced::hold_until_written`]). A resumed TLS 1.3 handshake and a request with
//! `Connection: close` (as EVE sends them) then cost the server two writes instead of four: its
//! first flight (sent when it waits for the client's Finished), and the session ticket, the
//! response and `close_notify` together. A kept-alive connection sends the ticket and the
//! response when it waits for the next request.
//!
//! A flush is not a send here: this suits a connection whose server writes whole responses and
//! then reads or closes (HTTP/1.1 as the device API serves it), not one that streams to a
//! client that sends nothing meanwhile (a watch).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Held bytes beyond which a write first sends what is held.
const HOLD: usize = 64 << 10;

/// A connection whose writes are held until it would wait for the peer (see the module), or
/// one that passes them straight through.
#[derive(Debug)]
pub struct Coalesced<S> {
    inner: S,
    /// Whether writes are held.
    holds: bool,
    /// Whether what is held stays held even when a read would block, until more is written.
    quiet: bool,
    held: Vec<u8>,
    /// How much of `held` is sent already.
    sent: usize,
}

impl<S> Coalesced<S> {
    /// `inner`, with its writes held.
    pub fn new(inner: S) -> Coalesced<S> {
        Coalesced {
            inner,
            holds: true,
            quiet: false,
            held: Vec::new(),
            sent: 0,
        }
    }

    /// `inner`, its writes passed straight through.
    pub fn passing(inner: S) -> Coalesced<S> {
        Coalesced {
            holds: false,
            ..Coalesced::new(inner)
        }
    }

    /// Keeps what is held (a TLS 1.3 server's session ticket, once its handshake is done) even
    /// while waiting for the peer, until something more is written (the response): the client
    /// sends its request without waiting for the ticket, which then goes with the response.
    /// Only for what the peer does not wait for: a TLS 1.2 server's last flight must not be.
    pub fn hold_until_written(&mut self) {
        self.quiet = self.holds;
    }
}

impl<S: AsyncWrite + Unpin> Coalesced<S> {
    /// Holds `bufs`, after sending what is held if it reached the bound.
    fn poll_hold(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.quiet = false;
        if self.held.len() >= HOLD {
            ready!(self.poll_send(cx))?;
        }
        let mut n = 0;
        for buf in bufs {
            self.held.extend_from_slice(buf);
            n += buf.len();
        }
        Poll::Ready(Ok(n))
    }

    /// Sends everything held.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesced<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending if this.quiet => Poll::Pending,
            Poll::Pending => {
                // About to wait for the peer, who may be waiting for what is held: send it.
                // Pending here too is fine: the task is woken by whichever comes first.
                if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Pending
            }
            ready => ready,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesced<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.holds {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.poll_hold(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.holds {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        this.poll_hold(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.holds || self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.holds {
            return Pin::new(&mut this.inner).poll_flush(cx);
        }
        // Held until the connection waits for the peer or closes (see the module).
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// A duplex end that records each write it is given.
    struct Recording {
        inner: DuplexStream,
        writes: Writes,
    }

    impl AsyncRead for Recording {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Recording {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
            self.writes.lock().unwrap().push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// Each write the connection underneath was given.
    type Writes = Arc<Mutex<Vec<Vec<u8>>>>;

    fn pair() -> (Coalesced<Recording>, DuplexStream, Writes) {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let writes = Arc::new(Mutex::new(Vec::new()));
        let ours = Coalesced::new(Recording {
            inner: ours,
            writes: writes.clone(),
        });
        (ours, theirs, writes)
    }

    /// `ours` waits for the peer, which reads `expected` (what `ours` sent meanwhile) and
    /// answers `reply`.
    async fn exchange(
        ours: &mut Coalesced<Recording>,
        theirs: &mut DuplexStream,
        expected: &[u8],
        reply: &[u8],
    ) {
        let mut answer = vec![0u8; reply.len()];
        let (read, ()) = tokio::join!(ours.read_exact(&mut answer), async {
            let mut got = vec![0u8; expected.len()];
            theirs.read_exact(&mut got).await.unwrap();
            assert_eq!(got, expected);
            theirs.write_all(reply).await.unwrap();
        });
        read.unwrap();
        assert_eq!(answer, reply);
    }

    #[tokio::test]
    async fn writes_go_together_when_the_connection_waits_for_the_peer() {
        let (mut ours, mut theirs, writes) = pair();
        ours.write_all(b"first flight").await.unwrap();
        ours.flush().await.unwrap();
        assert!(writes.lock().unwrap().is_empty(), "a flush holds");
        // Waiting for the peer sends what is held, in one write.
        exchange(&mut ours, &mut theirs, b"first flight", b"finished").await;
        assert_eq!(*writes.lock().unwrap(), [b"first flight".to_vec()]);
        // Ticket, response and close: one write, at shutdown. The ticket is held while the
        // request is awaited.
        ours.write_all(b"ticket").await.unwrap();
        ours.flush().await.unwrap();
        ours.hold_until_written();
        let mut request = [0u8; 7];
        let (read, ()) = tokio::join!(ours.read_exact(&mut request), async {
            tokio::task::yield_now().await;
            theirs.write_all(b"request").await.unwrap();
        });
        read.unwrap();
        assert_eq!(writes.lock().unwrap().len(), 1, "the ticket is held");
        ours.write_all(b"response").await.unwrap();
        ours.flush().await.unwrap();
        ours.write_all(b"close").await.unwrap();
        ours.shutdown().await.unwrap();
        let mut rest = Vec::new();
        theirs.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"ticketresponseclose");
        assert_eq!(writes.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn once_more_is_written_a_wait_for_the_peer_sends_again() {
        let (mut ours, mut theirs, writes) = pair();
        ours.write_all(b"ticket").await.unwrap();
        ours.hold_until_written();
        ours.write_all(b"response").await.unwrap();
        exchange(&mut ours, &mut theirs, b"ticketresponse", b"next").await;
        assert_eq!(writes.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_read_that_finds_data_sends_nothing_and_a_large_hold_is_sent() {
        let (mut ours, mut theirs, writes) = pair();
        theirs.write_all(b"request").await.unwrap();
        ours.write_all(b"ticket").await.unwrap();
        let mut request = [0u8; 7];
        ours.read_exact(&mut request).await.unwrap();
        assert!(writes.lock().unwrap().is_empty());
        // Beyond the bound, what is held goes before more is taken.
        ours.write_all(&vec![7u8; HOLD]).await.unwrap();
        ours.write_all(b"x").await.unwrap();
        assert_eq!(writes.lock().unwrap().len(), 1);
        assert_eq!(writes.lock().unwrap()[0].len(), 6 + HOLD);
    }
}
