//! A Server-Sent Events parser, pure: bytes in, complete events out. Used by
//! the registry watch and the config watch.

/// One complete event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (`message` when absent).
    pub event: String,
    /// `data:` lines joined by `\n`.
    pub data: String,
    /// `id:`, if any.
    pub id: Option<String>,
}

/// Accumulates bytes and yields events; comments (`:`) are skipped. Lines
/// longer than `max_line` bytes make the stream invalid.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    current: SseEvent,
    has_data: bool,
}

/// The stream sent a line longer than the parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server-sent event line longer than {0} bytes")]
pub struct LineTooLong(pub usize);

/// The longest line accepted: 1 MiB.
const MAX_LINE: usize = 1 << 20;

impl SseParser {
    /// Feeds `chunk`; appends the events it completes to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LineTooLong> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            self.line(&line, out);
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            return Err(LineTooLong(MAX_LINE));
        }
        Ok(())
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            let mut event = std::mem::take(&mut self.current);
            if self.has_data || !event.event.is_empty() {
                if event.event.is_empty() {
                    event.event = "message".to_owned();
                }
                out.push(event);
            }
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.current.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "id" => self.current.id = Some(value.to_owned()),
            _ => {}
        }
    }
}

/// How a followed stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The server offers no such stream (404, 405, 406, or an answer that
    /// is not `text/event-stream`): fall back to polling.
    Unsupported,
    /// The connection broke or the server failed: reconnect later.
    Broken,
}

/// Follows an answer that should be an event stream: checks its status and
/// type, then hands each batch of complete events to `on_events` until the
/// stream ends.
pub(crate) async fn follow<F, Fut>(resp: reqwest::Response, mut on_events: F) -> StreamEnd
where
    F: FnMut(Vec<SseEvent>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::StreamExt;
    use reqwest::StatusCode;

    let status = resp.status();
    let is_sse = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let absent = matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_ACCEPTABLE
    );
    if absent || (status.is_success() && !is_sse) {
        return StreamEnd::Unsupported;
    }
    if !status.is_success() {
        return StreamEnd::Broken;
    }
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::default();
    let mut events: Vec<SseEvent> = Vec::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            return StreamEnd::Broken;
        };
        if parser.feed(&chunk, &mut events).is_err() {
            return StreamEnd::Broken;
        }
        if !events.is_empty() {
            on_events(std::mem::take(&mut events)).await;
        }
    }
    StreamEnd::Broken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        p.feed(b"event: hello\nid: 3\ndata: {\"version\"", &mut out)
            .unwrap();
        assert!(out.is_empty());
        p.feed(
            b":3}\n\n: keep-alive\n\nevent:change\r\ndata:a\r\ndata:b\r\n\r\n",
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            [
                SseEvent {
                    event: "hello".into(),
                    data: "{\"version\":3}".into(),
                    id: Some("3".into())
                },
                SseEvent {
                    event: "change".into(),
                    data: "a\nb".into(),
                    id: None
                }
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..8)) {
            let mut p = SseParser::default();
            let mut out = Vec::new();
            for c in chunks {
                let _ = p.feed(&c, &mut out);
            }
        }
    }
}
