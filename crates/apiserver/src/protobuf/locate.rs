//! Which field of an object's message is at fault when the message does not decode, for the
//! error: found by decoding one field record at a time.

use std::collections::HashMap;

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};

use super::MAX_DEPTH;

/// Which field of a message that failed to decode is at fault, as a JSON path: the first field
/// record that fails alone, followed down into messages.
pub(super) fn locate(
    desc: &MessageDescriptor,
    mut bytes: &[u8],
    path: String,
    depth: usize,
) -> String {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    fn advance<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = rest;
        Some(taken)
    }
    let mut seen: HashMap<u32, usize> = HashMap::new();
    while depth <= MAX_DEPTH && !bytes.is_empty() {
        let start = bytes;
        let Some(key) = varint(&mut bytes) else {
            return path;
        };
        let number = u32::try_from(key >> 3).unwrap_or(0);
        let field = desc.get_field(number);
        let index = seen.entry(number).or_default();
        let here = match &field {
            Some(f) if desc.is_map_entry() && f.name() == "value" => path.clone(),
            Some(_) if desc.is_map_entry() => format!("a key of {path}"),
            Some(f) => {
                let name = f.json_name();
                let mut here = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                if f.is_list() {
                    here = format!("{here}[{index}]");
                }
                here
            }
            None => format!(
                "field {number} of {}",
                if path.is_empty() { "the object" } else { &path }
            ),
        };
        *index += 1;
        let payload = match key & 7 {
            0 => varint(&mut bytes).map(|_| &[][..]),
            1 => advance(&mut bytes, 8),
            2 => varint(&mut bytes)
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| advance(&mut bytes, n)),
            5 => advance(&mut bytes, 4),
            _ => None,
        };
        let Some(payload) = payload else {
            return here;
        };
        let record = &start[..start.len() - bytes.len()];
        if DynamicMessage::decode(desc.clone(), record).is_err() {
            return match field.map(|f| f.kind()) {
                Some(Kind::Message(inner)) if key & 7 == 2 => {
                    locate(&inner, payload, here, depth + 1)
                }
                _ => here,
            };
        }
    }
    path
}
