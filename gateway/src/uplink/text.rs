//! GB18030 text for GB/T 26875.3 descriptions (component descriptions are 31 bytes,
//! configuration descriptions up to 255), through `encoding_rs`.

use encoding_rs::GB18030;

use firegrid_protocols::gb26875::adu::{self, DESCRIPTION_LEN};

/// Decodes GB18030 bytes (trailing NULs and spaces dropped); malformed bytes become U+FFFD.
pub fn decode(bytes: &[u8]) -> String {
    let (text, _, _) = GB18030.decode(adu::trim_description(bytes));
    text.into_owned()
}

/// Encodes `text` in GB18030, cut at a character boundary to at most `max` bytes.
pub fn encode(text: &str, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let (bytes, _, _) = GB18030.encode(c.encode_utf8(&mut buf));
        if out.len() + bytes.len() > max {
            break;
        }
        out.extend_from_slice(&bytes);
    }
    out
}

/// A component description: `text` in GB18030, cut and NUL-padded to 31 bytes.
pub fn description(text: &str) -> [u8; DESCRIPTION_LEN] {
    adu::description(&encode(text, DESCRIPTION_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_description_round_trips() {
        // F1's description (GitHub shootingfans/codec_gb26875_3_2011, codec/codec_test.go).
        let bytes = [
            0xa3, 0xc1, 0xc7, 0xf8, 0xa3, 0xb1, 0xb2, 0xe3, 0xdf, 0xc8, 0xb2, 0xb8, 0xd7, 0xdf,
            0xc0, 0xc8, 0, 0, 0,
        ];
        assert_eq!(decode(&bytes), "Ａ区１层呷哺走廊");
        assert_eq!(encode("Ａ区１层呷哺走廊", 31), bytes[..16]);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let d = description("hz-0042 电气火灾剩余电流报警 第一路 很长很长");
        let text = decode(&d);
        assert!(
            "hz-0042 电气火灾剩余电流报警 第一路 很长很长".starts_with(&text),
            "{text}"
        );
        assert!(encode(&text, 31).len() <= 31);
        assert_eq!(decode(&description("")), "");
    }
}
