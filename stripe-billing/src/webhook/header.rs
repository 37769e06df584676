use std::fmt;

use super::HeaderError;

/// The most `v1` signatures a header may carry. Stripe sends one per active
/// secret of the endpoint (two while a secret is being rolled).
pub const MAX_SIGNATURES: usize = 8;

/// The length of an HMAC-SHA256 in bytes.
pub(crate) const SIGNATURE_LEN: usize = 32;

/// A parsed `Stripe-Signature` header: `t=<unix>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`.
///
/// Unknown keys (and `v0`, the legacy test-mode scheme) are ignored; `t` must appear
/// exactly once; each `v1` must be 64 hexadecimal digits. Parsing never allocates:
/// the signatures are decoded once into a fixed array.
///
/// ```
/// use stripe_billing::SignatureHeader;
///
/// let header = SignatureHeader::parse(&format!("t=1700000000,v1={},v0=ignored", "ab".repeat(32)))?;
/// assert_eq!(header.timestamp(), 1_700_000_000);
/// assert_eq!(header.signatures().len(), 1);
/// # Ok::<(), stripe_billing::HeaderError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    timestamp: i64,
    signatures: [[u8; SIGNATURE_LEN]; MAX_SIGNATURES],
    count: usize,
}

impl SignatureHeader {
    /// Parses a header value.
    #[inline]
    pub fn parse(header: &str) -> Result<Self, HeaderError> {
        let mut timestamp = None;
        let mut parsed = Self {
            timestamp: 0,
            signatures: [[0; SIGNATURE_LEN]; MAX_SIGNATURES],
            count: 0,
        };
        for (position, item) in header.split(',').enumerate() {
            let item = trim(item);
            if item.is_empty() {
                continue;
            }
            // `=` is ASCII, so the byte found is a character boundary.
            let equals = item
                .bytes()
                .position(|b| b == b'=')
                .ok_or(HeaderError::NotKeyValue { position })?;
            let (key, value) = (&item[..equals], trim(&item[equals + 1..]));
            match trim(key).as_bytes() {
                b"t" if timestamp.is_some() => return Err(HeaderError::DuplicateTimestamp),
                b"t" => timestamp = Some(parse_timestamp(value)?),
                b"v1" => parsed.push_signature(value, position)?,
                _ => {}
            }
        }
        parsed.timestamp = timestamp.ok_or(HeaderError::MissingTimestamp)?;
        Ok(parsed)
    }

    fn push_signature(&mut self, hex_value: &str, position: usize) -> Result<(), HeaderError> {
        let slot = self
            .signatures
            .get_mut(self.count)
            .ok_or(HeaderError::TooManySignatures {
                max: MAX_SIGNATURES,
            })?;
        if !decode_hex(hex_value.as_bytes(), slot) {
            return Err(HeaderError::InvalidSignature { position });
        }
        self.count += 1;
        Ok(())
    }

    /// The signed timestamp (unix seconds).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The decoded `v1` signatures, in header order.
    pub fn signatures(&self) -> &[[u8; SIGNATURE_LEN]] {
        &self.signatures[..self.count]
    }
}

/// `str::trim`, answering at once when both ends are ASCII and not whitespace (as
/// they are in every header Stripe sends).
fn trim(value: &str) -> &str {
    match value.as_bytes() {
        [first, .., last] | [first @ last]
            if first.is_ascii_graphic() && last.is_ascii_graphic() =>
        {
            value
        }
        _ => value.trim(),
    }
}

fn parse_timestamp(value: &str) -> Result<i64, HeaderError> {
    let invalid = || HeaderError::InvalidTimestamp(value.chars().take(32).collect());
    if value.is_empty() {
        return Err(invalid());
    }
    let mut seconds: i64 = 0;
    for byte in value.bytes() {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(invalid());
        }
        seconds = seconds
            .checked_mul(10)
            .and_then(|s| s.checked_add(i64::from(digit)))
            .ok_or_else(invalid)?;
    }
    Ok(seconds)
}

/// Each byte's value as a hexadecimal digit (either case), or `0xFF`.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decodes exactly `2 * out.len()` hexadecimal digits into `out`; `false` if the
/// length or a digit is wrong (then `out` holds garbage).
fn decode_hex(digits: &[u8], out: &mut [u8; SIGNATURE_LEN]) -> bool {
    if digits.len() != 2 * SIGNATURE_LEN {
        return false;
    }
    // Every invalid digit has its high bits set: check them once at the end.
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (
            HEX_DIGITS[usize::from(pair[0])],
            HEX_DIGITS[usize::from(pair[1])],
        );
        invalid |= high | low;
        *byte = (high << 4) | (low & 0x0F);
    }
    invalid & 0xF0 == 0
}

impl fmt::Debug for SignatureHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureHeader")
            .field("timestamp", &self.timestamp)
            .field("signatures", &self.count)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(byte: u8) -> String {
        hex::encode([byte; SIGNATURE_LEN])
    }

    #[test]
    fn parses_every_v1_and_ignores_v0_and_unknown_keys() {
        let header = format!("t=12,v1={},v0={},v1={},scheme=x", sig(1), sig(9), sig(2));
        let parsed = SignatureHeader::parse(&header).unwrap();
        assert_eq!(parsed.timestamp(), 12);
        assert_eq!(parsed.signatures(), &[[1; 32], [2; 32]]);
    }

    #[test]
    fn tolerates_spaces_and_empty_items() {
        let parsed = SignatureHeader::parse(&format!(" t = 5 , v1={} ,", sig(3))).unwrap();
        assert_eq!(parsed.timestamp(), 5);
        assert_eq!(parsed.signatures().len(), 1);
    }

    #[test]
    fn a_header_without_v1_parses_with_no_signatures() {
        let parsed = SignatureHeader::parse(&format!("t=5,v0={}", sig(3))).unwrap();
        assert!(parsed.signatures().is_empty());
    }

    #[test]
    fn rejects_each_malformation_with_its_own_error() {
        let s = sig(1);
        let cases = [
            (format!("v1={s}"), HeaderError::MissingTimestamp),
            (format!("t=1,t=2,v1={s}"), HeaderError::DuplicateTimestamp),
            (
                format!("t=-1,v1={s}"),
                HeaderError::InvalidTimestamp("-1".into()),
            ),
            (
                format!("t=abc,v1={s}"),
                HeaderError::InvalidTimestamp("abc".into()),
            ),
            (
                format!("t=,v1={s}"),
                HeaderError::InvalidTimestamp(String::new()),
            ),
            (
                "t=99999999999999999999".to_owned(),
                HeaderError::InvalidTimestamp("99999999999999999999".into()),
            ),
            (format!("t=1,{s}"), HeaderError::NotKeyValue { position: 1 }),
            (
                "t=1,v1=zz".to_owned(),
                HeaderError::InvalidSignature { position: 1 },
            ),
            (
                format!("t=1,v1={}", "g".repeat(64)),
                HeaderError::InvalidSignature { position: 1 },
            ),
            (
                format!("t=1,v1={}", &s[..62]),
                HeaderError::InvalidSignature { position: 1 },
            ),
            (
                format!("t=1,v1={s}00"),
                HeaderError::InvalidSignature { position: 1 },
            ),
            (
                format!("t=1{}", format!(",v1={s}").repeat(MAX_SIGNATURES + 1)),
                HeaderError::TooManySignatures {
                    max: MAX_SIGNATURES,
                },
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(SignatureHeader::parse(&header), Err(expected), "{header}");
        }
    }

    #[test]
    fn unicode_whitespace_is_trimmed_as_before() {
        let parsed =
            SignatureHeader::parse(&format!("\u{a0}t=5\u{2003},\tv1 =\u{3000}{} ", sig(3)))
                .unwrap();
        assert_eq!(parsed.timestamp(), 5);
        assert_eq!(parsed.signatures(), &[[3; 32]]);
    }

    #[test]
    fn hex_decoding_matches_the_hex_crate() {
        for digits in [
            "00".repeat(32),
            "ff".repeat(32),
            "0123456789abcdefABCDEF".repeat(3)[..64].to_owned(),
            format!("{}g0", "00".repeat(31)),
            format!("{}0/", "00".repeat(31)),
            format!("{}:0", "00".repeat(31)),
            format!("{}\u{e9}", "00".repeat(31)),
        ] {
            let mut ours = [0; SIGNATURE_LEN];
            let mut theirs = [0; SIGNATURE_LEN];
            let ok = decode_hex(digits.as_bytes(), &mut ours);
            assert_eq!(
                ok,
                hex::decode_to_slice(&digits, &mut theirs).is_ok(),
                "{digits}"
            );
            if ok {
                assert_eq!(ours, theirs, "{digits}");
            }
        }
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let parsed =
            SignatureHeader::parse(&format!("t=1,v1={}", sig(0xab).to_uppercase())).unwrap();
        assert_eq!(parsed.signatures(), &[[0xab; 32]]);
    }
}
