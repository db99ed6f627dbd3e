//! How a record's body is stored: a flag byte (0: as given, 1: deflated), the body's length
//! (u32, little-endian), then the bytes. Bodies of at least [`COMPRESS_FROM`] bytes are deflated
//! when that makes them smaller; JSON telemetry typically shrinks to a third or less.
//!
//! Smaller bodies (a metrics report, most log entries) are kept as they are: deflating one costs
//! about 15 µs whatever its size (the compressor's tables are reset and its Huffman codes built
//! for each record), as much as the rest of its append, for a quarter of its bytes at best.

use std::io::Read;

use bytes::Bytes;
use flate2::read::DeflateDecoder;
use flate2::{Compress, Compression, FlushCompress, Status};
use telemetry::{MAX_RECORD_BYTES, Result, TelemetryError};

/// Smaller bodies are kept as they are (see the module's documentation).
pub(crate) const COMPRESS_FROM: usize = 512;

const RAW: u8 = 0;
const DEFLATED: u8 = 1;
const HEADER: usize = 5;

/// The stored form of `body`.
pub(crate) fn encode(body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_le_bytes();
    if body.len() >= COMPRESS_FROM
        && let Some(out) = deflate(body, &len)
    {
        return out;
    }
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.push(RAW);
    out.extend_from_slice(&len);
    out.extend_from_slice(body);
    out
}

thread_local! {
    /// One compressor per thread, reset between records: a new one allocates (and the kernel
    /// zeroes) its few hundred KiB of tables, which cost more than deflating a metrics report.
    static COMPRESSOR: std::cell::RefCell<Compress> =
        std::cell::RefCell::new(Compress::new(Compression::fast(), false));
}

/// `body` deflated after its header, when that makes it smaller.
fn deflate(body: &[u8], len: &[u8; 4]) -> Option<Vec<u8>> {
    // Room for the whole body: a deflated one that does not fit is not worth keeping.
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.push(DEFLATED);
    out.extend_from_slice(len);
    COMPRESSOR.with_borrow_mut(|compressor| {
        // One reset per record (it zeroes some 250 KiB of tables), before use: whatever the last
        // record left, this one starts from a fresh stream.
        compressor.reset();
        let status = compressor.compress_vec(body, &mut out, FlushCompress::Finish);
        let whole = compressor.total_in() == body.len() as u64;
        (matches!(status, Ok(Status::StreamEnd)) && whole && out.len() < HEADER + body.len())
            .then_some(out)
    })
}

fn damaged(what: &str) -> TelemetryError {
    TelemetryError::Damaged(what.to_string())
}

/// The body's length (as appended) from its stored form.
pub(crate) fn body_len(stored: &[u8]) -> Result<u64> {
    let len: [u8; 4] = stored
        .get(1..HEADER)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| damaged("a record is shorter than its header"))?;
    Ok(u64::from(u32::from_le_bytes(len)))
}

/// The body from its stored form.
pub(crate) fn decode(stored: &[u8]) -> Result<Bytes> {
    let len = body_len(stored)? as usize;
    if len > MAX_RECORD_BYTES {
        return Err(damaged("a record claims more bytes than a record may have"));
    }
    let payload = &stored[HEADER..];
    match stored[0] {
        RAW if payload.len() == len => Ok(Bytes::copy_from_slice(payload)),
        DEFLATED => {
            let mut body = Vec::with_capacity(len);
            // One byte more than claimed shows a body longer than its header says.
            DeflateDecoder::new(payload)
                .take(len as u64 + 1)
                .read_to_end(&mut body)
                .map_err(|e| TelemetryError::Damaged(format!("a record does not inflate: {e}")))?;
            if body.len() != len {
                return Err(damaged("a record inflates to another length than recorded"));
            }
            Ok(Bytes::from(body))
        }
        _ => Err(damaged("a record has an unknown encoding")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_raw_or_deflated() {
        let json = "{\"level\":\"info\",\"msg\":\"the same words again and again\"}".repeat(20);
        for body in [
            &b""[..],
            b"{}",
            json.as_bytes(),
            &(0..=255u8).collect::<Vec<_>>(),
        ] {
            let stored = encode(body);
            assert_eq!(decode(&stored).unwrap(), body);
            assert_eq!(body_len(&stored).unwrap(), body.len() as u64);
        }
        assert!(
            encode(json.as_bytes()).len() < json.len() / 4,
            "JSON deflates"
        );
        let random: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(encode(&random).len() <= random.len() + HEADER);
        let small = json.as_bytes()[..COMPRESS_FROM - 1].to_vec();
        assert_eq!(encode(&small)[0], RAW, "a small body is kept as it is");
        assert!(decode(&[1, 9, 0, 0, 0, 1, 2]).is_err());
        assert!(decode(&[0, 9, 0]).is_err());
    }

    #[test]
    fn small_bodies_deflated_before_still_read_back() {
        use std::io::Write;
        // Stored by earlier versions, which deflated bodies from 96 bytes.
        let body =
            "{\"msg\":\"a log line, a log line, a log line, a log line, a log line\"}".repeat(2);
        assert!(body.len() < COMPRESS_FROM);
        let mut old =
            flate2::write::DeflateEncoder::new(vec![DEFLATED, 0, 0, 0, 0], Compression::fast());
        old.write_all(body.as_bytes()).unwrap();
        let mut old = old.finish().unwrap();
        old[1..HEADER].copy_from_slice(&(body.len() as u32).to_le_bytes());
        assert_eq!(decode(&old).unwrap(), body.as_bytes());
    }

    #[test]
    fn the_reused_compressor_writes_what_a_fresh_one_did() {
        use std::io::Write;
        // Records stored before the compressor was reused decode, and records stored now are
        // the same bytes a fresh encoder gives, one after another.
        for i in 0..50 {
            let body = format!("{{\"n\":{i},\"msg\":\"{}\"}}", "again ".repeat(i + 90));
            let mut fresh =
                flate2::write::DeflateEncoder::new(vec![DEFLATED, 0, 0, 0, 0], Compression::fast());
            fresh.write_all(body.as_bytes()).unwrap();
            let mut fresh = fresh.finish().unwrap();
            fresh[1..HEADER].copy_from_slice(&(body.len() as u32).to_le_bytes());
            let stored = encode(body.as_bytes());
            assert_eq!(stored, fresh, "record {i}");
            assert_eq!(decode(&stored).unwrap(), body.as_bytes());
        }
    }
}
