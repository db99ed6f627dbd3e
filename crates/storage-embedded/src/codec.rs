//! How keys and events are laid out in the redb tables.
//!
//! A record (the value of the `kv` table, and the states inside a log entry) is
//! `create_revision | mod_revision | version | expires_at` as little-endian 8-byte integers
//! (`expires_at` 0 when the key has no TTL), followed by the value. A log entry is
//! `tag (0 put, 1 delete) | key length (u32) | key`, then for a put
//! `has_prev (u8) | [prev length (u32) | prev record] | record`, for a delete the prev record.

use bytes::Bytes;
use storage::engine::Stored;
use storage::{Event, KeyValue, Result, StorageError};

const HEADER: usize = 32;

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(format!("{what} is truncated or malformed"))
}

/// Encodes a record.
pub(crate) fn encode_record(stored: &Stored) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + stored.kv.value.len());
    put_record(&mut out, stored);
    out
}

fn put_record(out: &mut Vec<u8>, stored: &Stored) {
    let kv = &stored.kv;
    out.extend_from_slice(&kv.create_revision.to_le_bytes());
    out.extend_from_slice(&kv.mod_revision.to_le_bytes());
    out.extend_from_slice(&kv.version.to_le_bytes());
    out.extend_from_slice(&stored.expires_at.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&kv.value);
}

fn int(bytes: &[u8], at: usize) -> [u8; 8] {
    bytes[at..at + 8].try_into().expect("8 bytes")
}

/// Decodes a record of `key`.
pub(crate) fn decode_record(key: &[u8], bytes: &[u8]) -> Result<Stored> {
    if bytes.len() < HEADER {
        return Err(corrupt("a stored record"));
    }
    let expires_at = u64::from_le_bytes(int(bytes, 24));
    Ok(Stored {
        kv: KeyValue {
            key: Bytes::copy_from_slice(key),
            value: Bytes::copy_from_slice(&bytes[HEADER..]),
            create_revision: i64::from_le_bytes(int(bytes, 0)),
            mod_revision: i64::from_le_bytes(int(bytes, 8)),
            version: i64::from_le_bytes(int(bytes, 16)),
        },
        expires_at: (expires_at != 0).then_some(expires_at),
    })
}

fn unexpiring(kv: &KeyValue) -> Stored {
    Stored {
        kv: kv.clone(),
        expires_at: None,
    }
}

/// Encodes a log entry.
pub(crate) fn encode_event(event: &Event) -> Vec<u8> {
    let key = event.key();
    let mut out = Vec::with_capacity(64 + key.len());
    let key_len = u32::try_from(key.len()).expect("keys are limited to 4 KiB");
    match event {
        Event::Put { kv, prev } => {
            out.push(0);
            out.extend_from_slice(&key_len.to_le_bytes());
            out.extend_from_slice(key);
            match prev {
                Some(prev) => {
                    out.push(1);
                    let record = encode_record(&unexpiring(prev));
                    let len = u32::try_from(record.len()).expect("values are limited to 1.5 MiB");
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(&record);
                }
                None => out.push(0),
            }
            put_record(&mut out, &unexpiring(kv));
        }
        Event::Delete { prev, .. } => {
            out.push(1);
            out.extend_from_slice(&key_len.to_le_bytes());
            out.extend_from_slice(key);
            put_record(&mut out, &unexpiring(prev));
        }
    }
    out
}

/// Decodes the log entry of `revision`.
pub(crate) fn decode_event(revision: i64, bytes: &[u8]) -> Result<Event> {
    let err = || corrupt(&format!("the log entry of revision {revision}"));
    let (&tag, rest) = bytes.split_first().ok_or_else(err)?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(err)?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(err());
    }
    let (key, rest) = rest.split_at(len);
    match tag {
        0 => {
            let (&has_prev, mut rest) = rest.split_first().ok_or_else(err)?;
            let prev = if has_prev == 1 {
                let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(err)?;
                let len = u32::from_le_bytes(*len) as usize;
                if tail.len() < len {
                    return Err(err());
                }
                let (prev, tail) = tail.split_at(len);
                rest = tail;
                Some(decode_record(key, prev)?.kv)
            } else {
                None
            };
            let kv = decode_record(key, rest)?.kv;
            Ok(Event::Put { kv, prev })
        }
        1 => Ok(Event::Delete {
            key: Bytes::copy_from_slice(key),
            revision,
            prev: decode_record(key, rest)?.kv,
        }),
        _ => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(value: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: Bytes::from_static(b"/k"),
            value: Bytes::copy_from_slice(value.as_bytes()),
            create_revision: 2,
            mod_revision: rev,
            version: rev - 1,
        }
    }

    #[test]
    fn events_round_trip() {
        let events = [
            Event::Put {
                kv: kv("a", 2),
                prev: None,
            },
            Event::Put {
                kv: kv("b", 3),
                prev: Some(kv("a", 2)),
            },
            Event::Delete {
                key: Bytes::from_static(b"/k"),
                revision: 4,
                prev: kv("", 3),
            },
        ];
        for event in events {
            let decoded = decode_event(event.revision(), &encode_event(&event)).unwrap();
            assert_eq!(decoded, event);
        }
    }

    #[test]
    fn truncated_entries_are_reported_as_corrupt() {
        let bytes = encode_event(&Event::Put {
            kv: kv("b", 3),
            prev: Some(kv("a", 2)),
        });
        // The last record runs to the end, so only cuts before its value can be noticed.
        for cut in 0..bytes.len() - 1 - 32 {
            if let Ok(event) = decode_event(3, &bytes[..cut]) {
                panic!("decoded {event:?} from {cut} bytes");
            }
        }
    }
}
