//! A protobuf watch stream: a run of frames, each a `meta.v1.WatchEvent` after its length as 4
//! big-endian bytes, whose `object.raw` holds the object's whole envelope.

use prost::Message as _;
use prost_reflect::{DynamicMessage, Value as Field};
use serde_json::Value;

use super::ProtobufError;
use super::descriptors::{bytes_field, descriptor, set, string_field};
use super::envelope::{decode_at, encode};
use super::special::RAW_EXTENSION;

pub(super) const WATCH_EVENT: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent";

/// Writes one watch event as a frame of a protobuf watch stream: the length (4 bytes, big
/// endian), then a `WatchEvent` whose object is the object's whole envelope.
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let mut raw = DynamicMessage::new(descriptor(RAW_EXTENSION)?);
    set(&mut raw, "raw", Field::Bytes(encode(object)?.into()))?;
    let mut event = DynamicMessage::new(descriptor(WATCH_EVENT)?);
    set(&mut event, "type", Field::String(event_type.to_owned()))?;
    set(&mut event, "object", Field::Message(raw))?;
    let body = event.encode_to_vec();
    let length = u32::try_from(body.len()).map_err(|_| ProtobufError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Reads one frame of a protobuf watch stream (length prefix included): the event's type and
/// its object as JSON.
pub fn decode_watch_event(frame: &[u8]) -> Result<(String, Value), ProtobufError> {
    let Some((length, body)) = frame.split_first_chunk::<4>() else {
        return Err(ProtobufError::Frame(format!(
            "{} bytes, fewer than the 4 of the length prefix",
            frame.len()
        )));
    };
    let length = u32::from_be_bytes(*length);
    if usize::try_from(length).ok() != Some(body.len()) {
        return Err(ProtobufError::Frame(format!(
            "the prefix says {length} bytes, {} follow",
            body.len()
        )));
    }
    let event =
        DynamicMessage::decode(descriptor(WATCH_EVENT)?, body).map_err(ProtobufError::Envelope)?;
    let event_type = string_field(&event, "type");
    let raw = match event.get_field_by_name("object") {
        Some(object) => object
            .as_message()
            .map(|m| bytes_field(m, "raw"))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok((event_type, decode_at(&raw, 1)?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protobuf::fixtures::{fixture, typed};

    #[test]
    fn watch_events_are_length_framed_envelopes() {
        let object = typed("v1", "ConfigMap", fixture("ConfigMap").unwrap());
        let frame = encode_watch_event("MODIFIED", &object).unwrap();
        let length = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(length, frame.len() - 4);
        assert_eq!(
            decode_watch_event(&frame).unwrap(),
            ("MODIFIED".to_owned(), object)
        );
        let status = typed(
            "v1",
            "Status",
            json!({"status": "Failure", "code": 410, "reason": "Expired"}),
        );
        let frame = encode_watch_event("ERROR", &status).unwrap();
        assert_eq!(decode_watch_event(&frame).unwrap().1, status);
        assert!(decode_watch_event(&frame[..frame.len() - 1]).is_err());
        assert!(decode_watch_event(&frame[..3]).is_err());
        assert!(encode_watch_event("ADDED", &json!({"apiVersion": "v1", "kind": "Pod"})).is_err());
    }
}
