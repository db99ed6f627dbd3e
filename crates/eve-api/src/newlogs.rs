//! The `newlogs` format (`eve-device-api.md` §6.3): a gzip file inside the envelope, one
//! `LogEntry` per line as Go's `encoding/json` writes it, the bundle's metadata in the gzip
//! header (a JSON Comment for device logs, the Name for application logs). Decompression is
//! bounded, so a small body cannot expand into unbounded memory.

use std::io::Read;

use serde::Deserialize;

/// At most this many bytes after decompression (EVE keeps each file below 50 KB compressed; a
/// log line compresses about tenfold).
pub const MAX_DECOMPRESSED: u64 = 8 * 1024 * 1024;

/// Why a `newlogs` body is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogError {
    /// Not a gzip file.
    #[error("the newlogs payload is not a gzip file: {0}")]
    NotGzip(String),
    /// Expands beyond the bound.
    #[error(
        "the newlogs payload expands beyond {MAX_DECOMPRESSED} bytes; split it into smaller files"
    )]
    TooLarge,
}

/// A log line as EVE writes it; unknown keys are ignored and missing ones empty.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Entry {
    /// `severity`.
    pub severity: String,
    /// `source`: the agent.
    pub source: String,
    /// `iid`: the process.
    pub iid: String,
    /// `content`: the message.
    pub content: String,
    /// `msgid`.
    pub msgid: u64,
    /// `tags`.
    pub tags: std::collections::BTreeMap<String, String>,
    /// `timestamp`.
    pub timestamp: Option<Timestamp>,
    /// `filename`.
    pub filename: String,
    /// `function`.
    pub function: String,
}

/// `{"seconds":N,"nanos":N}`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Timestamp {
    /// Seconds since the epoch.
    pub seconds: i64,
    /// Nanoseconds.
    pub nanos: i32,
}

/// One uploaded file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bundle {
    /// Device logs: the gzip Comment (JSON `{"devID", "image", "eveVersion"}`); application
    /// logs: the gzip Name (the application's display name).
    pub meta: String,
    /// The lines that parse as entries.
    pub entries: Vec<Entry>,
    /// Lines that did not (kept out, counted).
    pub skipped: usize,
}

/// Reads a `newlogs` payload.
pub fn parse(gzip: &[u8]) -> Result<Bundle, LogError> {
    let mut decoder = flate2::read::GzDecoder::new(gzip);
    let mut text = Vec::new();
    decoder
        .by_ref()
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut text)
        .map_err(|e| LogError::NotGzip(e.to_string()))?;
    if text.len() as u64 > MAX_DECOMPRESSED {
        return Err(LogError::TooLarge);
    }
    let header = decoder
        .header()
        .ok_or_else(|| LogError::NotGzip("no gzip header".into()))?;
    let meta = header
        .comment()
        .or(header.filename())
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_default();
    let mut bundle = Bundle {
        meta,
        ..Bundle::default()
    };
    for line in text.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => bundle.entries.push(entry),
            Err(_) => bundle.skipped += 1,
        }
    }
    Ok(bundle)
}

/// Writes a `newlogs` payload (for simulators and tests): the lines gzipped at best
/// compression, `meta` as the Comment (device logs) or the Name (application logs).
pub fn write(meta: &str, application: bool, lines: &[serde_json::Value]) -> Vec<u8> {
    let mut builder = flate2::GzBuilder::new().mtime(0);
    builder = if application {
        builder.filename(meta.as_bytes())
    } else {
        builder.comment(meta.as_bytes())
    };
    let mut encoder = builder.write(Vec::new(), flate2::Compression::best());
    for line in lines {
        let _ = serde_json::to_writer(&mut encoder, line);
        let _ = std::io::Write::write_all(&mut encoder, b"\n");
    }
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn device_and_application_logs_read_back() {
        let line = json!({"severity": "info", "source": "zedagent", "content": "hello",
            "msgid": 7, "tags": {"k": "v"}, "timestamp": {"seconds": 5, "nanos": 6}, "extra": 1});
        let meta = r#"{"devID":"d","image":"IMGA","eveVersion":"13.4.0"}"#;
        let bundle = parse(&write(meta, false, &[line.clone(), json!("not an entry")])).unwrap();
        assert_eq!(bundle.meta, meta);
        assert_eq!(bundle.skipped, 1);
        assert_eq!(bundle.entries[0].content, "hello");
        assert_eq!(bundle.entries[0].msgid, 7);
        assert_eq!(bundle.entries[0].tags["k"], "v");
        assert_eq!(
            bundle.entries[0].timestamp,
            Some(Timestamp {
                seconds: 5,
                nanos: 6
            })
        );
        let app = parse(&write("app-ubuntu", true, &[line])).unwrap();
        assert_eq!(app.meta, "app-ubuntu");
        assert_eq!(app.entries.len(), 1);
    }

    #[test]
    fn a_gzip_bomb_is_refused_without_expanding_it() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            std::io::Write::write_all(&mut encoder, &zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 200_000, "64 MiB in {} bytes", bomb.len());
        assert_eq!(parse(&bomb), Err(LogError::TooLarge));
    }

    #[test]
    fn garbage_is_not_gzip() {
        assert!(matches!(parse(b"hello"), Err(LogError::NotGzip(_))));
        assert!(matches!(parse(&[]), Err(LogError::NotGzip(_))));
        let mut truncated = write("m", false, &[json!({"content": "x"})]);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(parse(&truncated), Err(LogError::NotGzip(_))));
    }
}
