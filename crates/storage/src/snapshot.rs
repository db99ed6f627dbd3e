//! Lists at past revisions, shared by the in-process backends.
//!
//! A backend that keeps its current state plus a log of events (each with the previous value)
//! can answer a list at an older revision `R` without keeping every version of every key: the
//! state of a key at `R` is the `prev` of its first event after `R`, or its current state if it
//! has none. [`list_snapshot`] does that merge lazily, in key order, so a page of 500 costs 500
//! reads plus the events since `R`.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::{Event, KeyValue, ListRequest, Result};

/// The exclusive end of the range of keys starting with `prefix`, or `None` when the range has
/// no end (an empty prefix, or one of only `0xff` bytes).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The keys a list covers: those under its prefix, after its `start_after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Where the range starts.
    pub start: Bound<Bytes>,
    /// Where it ends (exclusive), if it ends.
    pub end: Option<Bytes>,
}

impl KeyRange {
    /// The range of a list request.
    pub fn of(request: &ListRequest) -> KeyRange {
        let start = match &request.start_after {
            Some(after) if after.as_ref() >= request.prefix.as_ref() => {
                Bound::Excluded(after.clone())
            }
            _ => Bound::Included(request.prefix.clone()),
        };
        KeyRange {
            start,
            end: prefix_end(&request.prefix).map(Bytes::from),
        }
    }

    /// The range holding just `key`.
    pub fn single(key: &[u8]) -> KeyRange {
        let mut end = key.to_vec();
        end.push(0);
        KeyRange {
            start: Bound::Included(Bytes::copy_from_slice(key)),
            end: Some(Bytes::from(end)),
        }
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(s) => key >= s.as_ref(),
            Bound::Excluded(s) => key > s.as_ref(),
            Bound::Unbounded => true,
        };
        after_start && self.end.as_ref().is_none_or(|e| key < e.as_ref())
    }

    /// The range as bounds over byte slices, for ordered maps.
    pub fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        let start = match &self.start {
            Bound::Included(s) => Bound::Included(s.as_ref()),
            Bound::Excluded(s) => Bound::Excluded(s.as_ref()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match &self.end {
            Some(e) => Bound::Excluded(e.as_ref()),
            None => Bound::Unbounded,
        };
        (start, end)
    }
}

/// Merges the current state of a range with the events after an older revision into the state
/// at that revision, and returns its first `limit` keys (all for 0) and whether more follow.
///
/// `current` must yield the range's keys in key order; `later` the events after the wanted
/// revision in revision order (events outside the range are ignored).
pub fn list_snapshot<'a>(
    current: impl Iterator<Item = Result<KeyValue>>,
    later: impl IntoIterator<Item = &'a Event>,
    range: &KeyRange,
    limit: usize,
) -> Result<(Vec<KeyValue>, bool)> {
    let mut overrides: BTreeMap<Bytes, Option<KeyValue>> = BTreeMap::new();
    for event in later {
        if range.contains(event.key()) {
            overrides
                .entry(event.key().clone())
                .or_insert_with(|| event.prev().cloned());
        }
    }
    let mut current = current.peekable();
    let mut overrides = overrides.into_iter().peekable();
    let mut out = Vec::new();
    loop {
        // Take the smaller of the two heads; an override replaces the current state of its key.
        let next = match (current.peek(), overrides.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) => return Err(current.next().and_then(Result::err).expect("peeked")),
            (Some(Ok(kv)), Some((key, _))) if kv.key < *key => current.next().map(|r| r.map(Some)),
            (Some(Ok(kv)), Some((key, _))) if kv.key == *key => {
                current.next();
                overrides.next().map(|(_, v)| Ok(v))
            }
            (Some(Ok(_)), None) => current.next().map(|r| r.map(Some)),
            (_, Some(_)) => overrides.next().map(|(_, v)| Ok(v)),
        };
        let Some(kv) = next.transpose()?.flatten() else {
            continue;
        };
        if limit != 0 && out.len() == limit {
            return Ok((out, true));
        }
        out.push(kv);
    }
    Ok((out, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::from(format!("v{rev}")),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        }
    }

    fn keys(kvs: &[KeyValue]) -> Vec<String> {
        kvs.iter()
            .map(|kv| format!("{}@{}", String::from_utf8_lossy(&kv.key), kv.mod_revision))
            .collect()
    }

    #[test]
    fn prefix_end_increments_the_last_byte_below_ff() {
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn rewinding_restores_deleted_and_hides_created_keys() {
        // At revision 3: a@1, b@2, c@3. Then: b updated (4), c deleted (5), d created (6).
        let current = vec![kv("a", 1), kv("b", 4), kv("d", 6)];
        let later = [
            Event::Put {
                kv: kv("b", 4),
                prev: Some(kv("b", 2)),
            },
            Event::Delete {
                key: "c".into(),
                revision: 5,
                prev: kv("c", 3),
            },
            Event::Put {
                kv: kv("d", 6),
                prev: None,
            },
        ];
        let range = KeyRange::of(&ListRequest::default());
        let (page, more) =
            list_snapshot(current.clone().into_iter().map(Ok), &later, &range, 0).unwrap();
        assert_eq!(keys(&page), ["a@1", "b@2", "c@3"]);
        assert!(!more);
        let (page, more) = list_snapshot(current.into_iter().map(Ok), &later, &range, 2).unwrap();
        assert_eq!(keys(&page), ["a@1", "b@2"]);
        assert!(more);
    }

    #[test]
    fn more_is_false_when_only_deleted_keys_follow() {
        let current = vec![kv("a", 1), kv("b", 3)];
        let later = [Event::Put {
            kv: kv("b", 3),
            prev: None,
        }];
        let range = KeyRange::of(&ListRequest::default());
        let (page, more) = list_snapshot(current.into_iter().map(Ok), &later, &range, 1).unwrap();
        assert_eq!(keys(&page), ["a@1"]);
        assert!(!more);
    }
}
