//! Bytes as lower-case hex, as status fields show hashes, keys' names and PCR values.

/// `bytes` in lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of hex `text`; `None` when it is not hex.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(super::encode(&[0xab, 0x01]), "ab01");
        assert_eq!(super::decode("ab01"), Some(vec![0xab, 0x01]));
        for bad in ["abc", "zz", "é0"] {
            assert_eq!(super::decode(bad), None, "{bad}");
        }
    }
}
