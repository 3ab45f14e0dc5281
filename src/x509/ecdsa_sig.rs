//! The two forms of an ECDSA signature: the DER Ecdsa-Sig-Value that X.509 carries (checked
//! here before a verifier sees it, so that a malformed signature is reported as malformed) and
//! the raw r‖s that PKCS#11's CKM_ECDSA returns (turned into the DER form).

use der::asn1::UintRef;
use der::{Encode, Reader, SliceReader};

/// Whether `signature` is a DER `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` whose
/// integers are positive, minimally encoded and at most `scalar_len` bytes (the curve order's
/// size), with nothing after it. BER, negative numbers and oversized integers are refused;
/// r or s of zero or beyond the order are left to the verifier, which refuses them as wrong.
pub(crate) fn is_der_signature(signature: &[u8], scalar_len: usize) -> bool {
    let Ok(mut reader) = SliceReader::new(signature) else {
        return false;
    };
    let parsed = reader.sequence(|seq| {
        let r: UintRef<'_> = seq.decode()?;
        let s: UintRef<'_> = seq.decode()?;
        Ok::<_, der::Error>((r, s))
    });
    match (parsed, reader.finish()) {
        // as_bytes strips the sign octet: what remains is the magnitude.
        (Ok((r, s)), Ok(_)) => r.as_bytes().len() <= scalar_len && s.as_bytes().len() <= scalar_len,
        _ => false,
    }
}

/// The DER Ecdsa-Sig-Value of a raw `r ‖ s` signature of a curve whose order is `scalar_len`
/// bytes long, or `None` when `raw` is not exactly two such halves.
pub(crate) fn raw_to_der(raw: &[u8], scalar_len: usize) -> Option<Vec<u8>> {
    if scalar_len == 0 || raw.len() != 2 * scalar_len {
        return None;
    }
    let (r, s) = raw.split_at(scalar_len);
    // UintRef drops the leading zero octets and adds the sign octet DER needs.
    let r = UintRef::new(r).ok()?;
    let s = UintRef::new(s).ok()?;
    let mut out = Vec::with_capacity(raw.len() + 9);
    let header = der::Header::new(
        der::Tag::Sequence,
        (r.encoded_len().ok()? + s.encoded_len().ok()?).ok()?,
    );
    header.encode_to_vec(&mut out).ok()?;
    r.encode_to_vec(&mut out).ok()?;
    s.encode_to_vec(&mut out).ok()?;
    Some(out)
}

/// The raw r‖s of a DER signature, for tests that need the token's form.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// Each integer left-padded to `scalar_len` bytes.
    pub(crate) fn der_to_raw(der: &[u8], scalar_len: usize) -> Vec<u8> {
        let mut reader = SliceReader::new(der).unwrap();
        let (r, s) = reader
            .sequence(|seq| {
                let r: UintRef<'_> = seq.decode()?;
                let s: UintRef<'_> = seq.decode()?;
                Ok::<_, der::Error>((r.as_bytes().to_vec(), s.as_bytes().to_vec()))
            })
            .unwrap();
        let mut out = vec![0; 2 * scalar_len];
        out[scalar_len - r.len()..scalar_len].copy_from_slice(&r);
        out[2 * scalar_len - s.len()..].copy_from_slice(&s);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_signatures_become_der_and_pass_the_check() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r needs a sign octet
        raw[31] = 1;
        raw[40] = 0x7f; // s has 8 leading zero octets
        raw[63] = 2;
        let der = raw_to_der(&raw, 32).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x3d, 0x02, 0x21]);
        assert_eq!(der.len(), 2 + 35 + 26);
        assert!(is_der_signature(&der, 32));
        // r's 32 magnitude octets are too many for a 31-octet order.
        assert!(!is_der_signature(&der, 31));
        assert!(raw_to_der(&raw[..63], 32).is_none());
        assert!(raw_to_der(&[], 0).is_none());
    }

    #[test]
    fn ber_trailing_data_and_negative_integers_are_refused() {
        let good = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];
        assert!(is_der_signature(&good, 32));
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(!is_der_signature(&trailing, 32));
        // A redundant leading zero octet (not minimal).
        let padded = [0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01];
        assert!(!is_der_signature(&padded, 32));
        // A negative r.
        let negative = [0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01];
        assert!(!is_der_signature(&negative, 32));
        // Long-form length where the short form fits (BER).
        let long_len = [0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];
        assert!(!is_der_signature(&long_len, 32));
        // Raw r‖s is not DER.
        assert!(!is_der_signature(&[0x11; 64], 32));
    }
}
