//! A minimal HTTP/1.1 client for load generation: one keep-alive TCP connection, requests
//! written as prepared bytes, responses parsed with `httparse` (Content-Length, chunked, or
//! read-to-close bodies). No pooling, redirects or TLS: the engine owns one [`Conn`] per virtual
//! client and reconnects when the server closes. Kept small so that the generator's cost per
//! request stays far below the server's (the engine reports it).

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection before a complete response.
    #[error("connection closed by the server before a complete response")]
    Closed,
    /// Not HTTP/1.x as we know it.
    #[error("bad HTTP response: {0}")]
    Parse(String),
    /// A URL we cannot use.
    #[error("bad URL {0:?}: only http://host:port[/path] is supported")]
    Url(String),
}

/// Where to connect, from an `http://host:port` URL.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Resolved address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Path prefix of the URL (no trailing `/`), usually empty.
    pub base_path: String,
}

impl Endpoint {
    /// Parses and resolves `http://host:port[/prefix]`.
    pub async fn parse(url: &str) -> Result<Endpoint, Error> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| Error::Url(url.to_owned()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(Error::Url(url.to_owned()));
        }
        let with_port = if authority
            .rsplit(':')
            .next()
            .is_some_and(|p| p.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await?
            .next()
            .ok_or_else(|| Error::Url(url.to_owned()))?;
        Ok(Endpoint {
            addr,
            host: authority.to_owned(),
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// Writes an HTTP/1.1 request into `out` (cleared first).
pub fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    endpoint: &Endpoint,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(endpoint.base_path.as_bytes());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(endpoint.host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method == "POST" {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// Whether the server will close the connection after this response.
    pub close: bool,
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

enum BodyKind {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    /// Connects (TCP_NODELAY on).
    pub async fn connect(endpoint: &Endpoint) -> Result<Conn, Error> {
        let stream = TcpStream::connect(endpoint.addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
        })
    }

    async fn fill(&mut self) -> Result<usize, Error> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        Ok(self.stream.read_buf(&mut self.buf).await?)
    }

    /// Sends one prepared request and reads its response.
    pub async fn send(&mut self, request: &[u8]) -> Result<Response, Error> {
        self.stream.write_all(request).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<Response, Error> {
        // Head.
        let (status, header_len, body_kind, etag, content_type, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 24];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = parsed.code.unwrap_or(0);
                    let mut kind = None;
                    let mut etag = None;
                    let mut content_type = None;
                    let mut close = parsed.version == Some(0);
                    for h in parsed.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let len = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .ok_or_else(|| Error::Parse("bad Content-Length".into()))?;
                            kind = Some(BodyKind::Length(len));
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            if h.value.eq_ignore_ascii_case(b"chunked") {
                                kind = Some(BodyKind::Chunked);
                            }
                        } else if h.name.eq_ignore_ascii_case("etag") {
                            etag = Some(String::from_utf8_lossy(h.value).into_owned());
                        } else if h.name.eq_ignore_ascii_case("content-type") {
                            content_type = Some(String::from_utf8_lossy(h.value).into_owned());
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close = h.value.eq_ignore_ascii_case(b"close");
                        }
                    }
                    let kind = match kind {
                        _ if status == 304 || status == 204 || (100..200).contains(&status) => {
                            BodyKind::Length(0)
                        }
                        Some(k) => k,
                        None => BodyKind::UntilClose,
                    };
                    break (status, n, kind, etag, content_type, close);
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() > 64 * 1024 {
                        return Err(Error::Parse("response head over 64 KiB".into()));
                    }
                    if self.fill().await? == 0 {
                        return Err(Error::Closed);
                    }
                }
                Err(e) => return Err(Error::Parse(e.to_string())),
            }
        };
        self.buf.advance(header_len);
        // Body.
        let body = match body_kind {
            BodyKind::Length(len) => {
                while self.buf.len() < len {
                    if self.buf.capacity() - self.buf.len() < len - self.buf.len() {
                        self.buf.reserve(len - self.buf.len());
                    }
                    if self.fill().await? == 0 {
                        return Err(Error::Closed);
                    }
                }
                self.buf.split_to(len).freeze()
            }
            BodyKind::Chunked => self.read_chunked().await?,
            BodyKind::UntilClose => {
                while self.fill().await? != 0 {}
                return Ok(Response {
                    status,
                    body: self.buf.split().freeze(),
                    etag,
                    content_type,
                    close: true,
                });
            }
        };
        Ok(Response {
            status,
            body,
            etag,
            content_type,
            close,
        })
    }

    async fn read_chunked(&mut self) -> Result<Bytes, Error> {
        let mut body = BytesMut::new();
        loop {
            // Chunk size line.
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if self.buf.len() > 1024 {
                    return Err(Error::Parse("chunk size line too long".into()));
                }
                if self.fill().await? == 0 {
                    return Err(Error::Closed);
                }
            };
            let line = std::str::from_utf8(&self.buf[..line_end])
                .map_err(|_| Error::Parse("chunk size".into()))?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| Error::Parse(format!("chunk size {size_text:?}")))?;
            self.buf.advance(line_end + 2);
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        self.buf.advance(i + 2);
                        if i == 0 {
                            return Ok(body.freeze());
                        }
                        continue;
                    }
                    if self.fill().await? == 0 {
                        return Err(Error::Closed);
                    }
                }
            }
            while self.buf.len() < size + 2 {
                if self.fill().await? == 0 {
                    return Err(Error::Closed);
                }
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.advance(size + 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn serve(replies: Vec<&'static [u8]>) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            for reply in replies {
                let _ = s.read(&mut buf).await;
                // Write in two pieces, to exercise partial reads.
                let (a, b) = reply.split_at(reply.len() / 2);
                s.write_all(a).await.expect("write");
                s.flush().await.expect("flush");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                s.write_all(b).await.expect("write");
            }
        });
        Endpoint::parse(&format!("http://{addr}"))
            .await
            .expect("endpoint")
    }

    #[tokio::test]
    async fn reads_length_chunked_and_304_on_one_connection() {
        let ep = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"x\"\r\nContent-Type: application/ocsp-response\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nrest",
        ])
        .await;
        let mut c = Conn::connect(&ep).await.expect("connect");
        let mut req = Vec::new();
        write_request(&mut req, "GET", &ep, "/a", &[], b"");
        assert!(req.starts_with(b"GET /a HTTP/1.1\r\nHost: 127.0.0.1:"));
        let r = c.send(&req).await.expect("first");
        assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]));
        assert_eq!(r.etag.as_deref(), Some("\"x\""));
        assert_eq!(r.content_type.as_deref(), Some("application/ocsp-response"));
        let r = c.send(&req).await.expect("chunked");
        assert_eq!(&r.body[..], b"abcde");
        let r = c.send(&req).await.expect("304");
        assert_eq!((r.status, r.body.len()), (304, 0));
        let r = c.send(&req).await.expect("until close");
        assert!(r.close);
        assert_eq!(&r.body[..], b"rest");
        assert!(c.send(&req).await.is_err());
    }

    #[tokio::test]
    async fn urls() {
        let ep = Endpoint::parse("http://127.0.0.1:9/base/")
            .await
            .expect("parses");
        assert_eq!(ep.addr.port(), 9);
        assert_eq!(ep.base_path, "/base");
        let mut out = Vec::new();
        write_request(&mut out, "POST", &ep, "/ocsp", &[("X", "y")], b"ab");
        assert_eq!(
            out,
            b"POST /base/ocsp HTTP/1.1\r\nHost: 127.0.0.1:9\r\nX: y\r\nContent-Length: 2\r\n\r\nab"
        );
        assert!(Endpoint::parse("https://x:1").await.is_err());
    }
}
