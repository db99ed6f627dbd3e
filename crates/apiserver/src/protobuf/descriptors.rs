//! The compiled descriptor set of our `proto/k8s/*.proto` (written by the build script) as a
//! [`DescriptorPool`], and reading and writing fields of our own messages by name.

use std::sync::LazyLock;

use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage as _, Value as Field,
};

use super::ProtobufError;

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/k8s_descriptors.bin"));

static POOL: LazyLock<Result<DescriptorPool, String>> =
    LazyLock::new(|| DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string()));

/// The message of this full name.
pub(super) fn descriptor(name: &str) -> Result<MessageDescriptor, ProtobufError> {
    let pool = POOL
        .as_ref()
        .map_err(|e| ProtobufError::Schema(e.clone()))?;
    pool.get_message_by_name(name)
        .ok_or_else(|| ProtobufError::Schema(format!("no message {name}")))
}

/// Sets a field of one of our own messages by name.
pub(super) fn set(
    message: &mut DynamicMessage,
    name: &str,
    value: Field,
) -> Result<(), ProtobufError> {
    let field = message
        .descriptor()
        .get_field_by_name(name)
        .ok_or_else(|| ProtobufError::Schema(format!("no field {name}")))?;
    message
        .try_set_field(&field, value)
        .map_err(|e| ProtobufError::Schema(e.to_string()))
}

/// A string field (empty when absent).
pub(super) fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A bytes field (empty when absent).
pub(super) fn bytes_field(message: &DynamicMessage, name: &str) -> Vec<u8> {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
        .unwrap_or_default()
}

/// Whether a field is present.
pub(super) fn has(message: &DynamicMessage, name: &str) -> bool {
    message
        .descriptor()
        .get_field_by_name(name)
        .is_some_and(|f| message.has_field(&f))
}

/// An integer field (32 or 64 bits; zero when absent).
pub(super) fn number_field(message: &DynamicMessage, name: &str) -> i64 {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_i64().or_else(|| v.as_i32().map(i64::from)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::envelope::{TYPE_META, UNKNOWN};
    use crate::protobuf::kinds::KINDS;
    use crate::protobuf::special::{
        ATTESTATION_VALUE, DURATION, FIELDS_V1, INLINE, INT_OR_STRING, MICRO_TIME, QUANTITY,
        RAW_EXTENSION, TIME,
    };
    use crate::protobuf::watch::WATCH_EVENT;

    #[test]
    fn every_message_in_the_table_is_described() {
        for (_, _, message) in KINDS {
            descriptor(message).unwrap();
        }
        for name in [
            UNKNOWN,
            TYPE_META,
            RAW_EXTENSION,
            TIME,
            MICRO_TIME,
            DURATION,
            FIELDS_V1,
            WATCH_EVENT,
            QUANTITY,
            INT_OR_STRING,
            ATTESTATION_VALUE,
        ] {
            descriptor(name).unwrap();
        }
        for (message, field) in INLINE {
            assert!(
                descriptor(message)
                    .unwrap()
                    .get_field_by_name(field)
                    .is_some()
            );
        }
    }
}
