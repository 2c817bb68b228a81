//! Up to eight ASCII digits read at once: the inner step of both integer loops, the
//! reader's exact one and the row path's. A leaf under `reader`.

/// The leading ASCII digits of 8 bytes (little-endian: byte 0 first), 1 to 8 of them:
/// (digit count, value). With 8, the number may go on past the chunk. SWAR, as in
/// Lemire's `parse_eight_digits_unrolled`.
#[inline]
pub(super) fn swar_digits(chunk: u64) -> Option<(usize, u64)> {
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    let x = chunk ^ 0x3030_3030_3030_3030;
    // A byte is a digit iff its high nibble is 0 and adding 6 does not carry into it. A
    // carry out of a non-digit byte can only disturb bytes after it.
    let nondigit = (x & HIGH) | (x.wrapping_add(0x0606_0606_0606_0606) & HIGH);
    let digits = (nondigit.trailing_zeros() / 8) as usize;
    if digits == 0 {
        return None;
    }
    // Keep the digits, moved to the top bytes so the low bytes read as leading zeros.
    let v = (x & LOW) << (8 * (8 - digits));
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    let v = v.wrapping_mul(10_000) + (v >> 32);
    Some((digits, v & 0xFFFF_FFFF))
}

#[cfg(test)]
mod tests {
    use super::swar_digits;

    #[test]
    fn swar_reads_one_to_eight_digits_like_the_scalar_loop() {
        for text in ["0,", "7\n", "12,3", "999]", "1234567,", "100000 ", "42\r\n", "9876543]"] {
            let mut bytes = [b'x'; 8];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            let digits = text.bytes().take_while(u8::is_ascii_digit).count();
            let value: u64 = text[..digits].parse().unwrap();
            assert_eq!(
                swar_digits(u64::from_le_bytes(bytes)),
                Some((digits, value)),
                "{text:?}"
            );
        }
        assert_eq!(swar_digits(u64::from_le_bytes(*b"12345678")), Some((8, 12_345_678)));
        assert_eq!(swar_digits(u64::from_le_bytes(*b"99999999")), Some((8, 99_999_999)));
        assert_eq!(swar_digits(u64::from_le_bytes(*b"00000010")), Some((8, 10)));
        assert_eq!(swar_digits(u64::from_le_bytes(*b",1234567")), None);
        for b in 0u8..=255 {
            if b.is_ascii_digit() {
                continue;
            }
            let chunk = u64::from_le_bytes([b'5', b, b'1', b'1', b'1', b'1', b'1', b'1']);
            assert_eq!(swar_digits(chunk), Some((1, 5)), "byte {b}");
        }
    }
}
