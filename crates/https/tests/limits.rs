//! The listener's limits against clients that misbehave: connection caps in all and per
//! address (the connection beyond is closed at once), the handshake and header/idle deadlines,
//! HTTP/1.1 only when HTTP/2 is off; a well-behaved client is served throughout.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A server answering "ok" within `limits`, its address, and its root certificate.
async fn server(
    limits: https::Limits,
) -> (
    std::net::SocketAddr,
    Vec<u8>,
    tokio::sync::watch::Sender<bool>,
) {
    let root = pki::Authority::generate("limits test").unwrap();
    let issued = root
        .issue_server("localhost", &["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    let tls = https::server_config(
        &issued.certificate_pem,
        &issued.key_pem,
        &[b"h2", b"http/1.1"],
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(https::serve_with(
        listener,
        Arc::new(tls),
        limits,
        stopped,
        |_peer| {
            |_request| async { http::Response::new(Full::new(bytes::Bytes::from_static(b"ok"))) }
        },
    ));
    (address, root.certificate_pem.into_bytes(), stop)
}

/// A TCP connection to `address` from the loopback address `from`.
async fn connect_from(from: [u8; 4], address: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind((std::net::Ipv4Addr::from(from), 0).into())
        .unwrap();
    socket.connect(address).await.unwrap()
}

/// Whether the server closes `stream` within `within` (reads end, or fail).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// A TLS client trusting `root`, speaking `alpn`.
fn client(root: &[u8], alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut config = common::client_config(root);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 GET over a new connection from `from`: the response's first line, or why the
/// handshake failed (a connection closed at once by a cap).
async fn get(from: [u8; 4], address: std::net::SocketAddr, root: &[u8]) -> String {
    let tcp = connect_from(from, address).await;
    let mut tls = match client(root, &[b"http/1.1"])
        .connect("localhost".try_into().unwrap(), tcp)
        .await
    {
        Ok(tls) => tls,
        Err(e) => return format!("handshake failed: {e}"),
    };
    tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap_or_default();
    answer.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_caps_are_closed_at_once_and_others_served() {
    let (address, root, _stop) = server(https::Limits {
        max_connections: 6,
        max_per_address: 3,
        ..https::Limits::default()
    })
    .await;
    // Three idle connections from one address: the fourth from it is closed at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 2], address).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = connect_from([127, 0, 0, 2], address).await;
    assert!(closed_within(&mut fourth, Duration::from_secs(2)).await);
    // Another address is served meanwhile.
    assert_eq!(get([127, 0, 0, 3], address, &root).await, "HTTP/1.1 200 OK");
    // Up to the global cap, then nobody new.
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 4], address).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = connect_from([127, 0, 0, 5], address).await;
    assert!(closed_within(&mut over, Duration::from_secs(2)).await);
    // Freed connections count no more.
    held.clear();
    let served = async {
        loop {
            let line = get([127, 0, 0, 2], address, &root).await;
            if line == "HTTP/1.1 200 OK" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("served again once the connections are gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_dropped_after_the_handshake_and_header_deadlines() {
    let (address, root, _stop) = server(https::Limits {
        handshake: Duration::from_millis(300),
        header: Duration::from_millis(300),
        ..https::Limits::default()
    })
    .await;
    // No handshake at all.
    let mut silent = connect_from([127, 0, 0, 2], address).await;
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    // A handshake, then nothing: no headers ever come.
    let tcp = connect_from([127, 0, 0, 2], address).await;
    let mut tls = client(&root, &[b"http/1.1"])
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(3), tls.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "closed after the header deadline: {read:?}"
    );
    // Half a header line, then a pause: the same.
    let tcp = connect_from([127, 0, 0, 2], address).await;
    let mut tls = client(&root, &[b"http/1.1"])
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nhost: loc").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "closed after the header deadline");
    // A kept-alive connection idle after its request is closed too.
    let tcp = connect_from([127, 0, 0, 2], address).await;
    let mut tls = client(&root, &[b"http/1.1"])
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the idle connection is closed");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200 OK"));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_http2_only_http1_is_spoken() {
    let (address, root, _stop) = server(https::Limits {
        http2: false,
        ..https::Limits::default()
    })
    .await;
    // HTTP/2 by prior knowledge (the preface, whatever ALPN said): refused.
    let tcp = connect_from([127, 0, 0, 2], address).await;
    let mut tls = client(&root, &[b"h2"])
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "no HTTP/2 frames: {answer:?}"
    );
    assert_eq!(get([127, 0, 0, 2], address, &root).await, "HTTP/1.1 200 OK");
}

/// A listener holding its writes (`coalesce_writes`) answers a connection per request, each
/// closed after its response, and several requests on one kept-alive connection: what it holds
/// goes when it waits for the client or closes, and the TLS 1.3 session ticket not before the
/// response.
#[tokio::test]
async fn a_listener_that_holds_its_writes_answers_closed_and_kept_alive_connections() {
    let (address, root, _stop) = server(https::Limits {
        http2: false,
        coalesce_writes: true,
        ..https::Limits::default()
    })
    .await;
    for _ in 0..3 {
        let answer =
            tokio::time::timeout(Duration::from_secs(10), get([127, 0, 0, 1], address, &root))
                .await
                .expect("answered");
        assert_eq!(answer, "HTTP/1.1 200 OK");
    }
    let tcp = connect_from([127, 0, 0, 1], address).await;
    let mut tls = client(&root, &[b"http/1.1"])
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    // The handshake is done (TLS 1.3): the session ticket waits for the response, so nothing
    // comes before the request is sent.
    let mut peeked = [0u8; 1];
    assert!(
        tokio::time::timeout(
            Duration::from_millis(300),
            tls.get_ref().0.peek(&mut peeked)
        )
        .await
        .is_err(),
        "the session ticket was sent before the response"
    );
    for _ in 0..3 {
        tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        // The whole response (headers and the two-byte body) arrives without the connection
        // closing.
        let mut answer = Vec::new();
        while !answer.ends_with(b"\r\n\r\nok") {
            let mut buffer = [0u8; 1024];
            let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buffer))
                .await
                .expect("answered")
                .unwrap();
            assert!(n > 0, "the connection stays open");
            answer.extend_from_slice(&buffer[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
    }
}
