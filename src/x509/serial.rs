//! Certificate serial numbers: 20 CSPRNG bytes, top bit cleared, so positive and at most 20
//! octets with 159 random bits. An RNG failure is an error, never a fallback.

use x509_cert::serial_number::SerialNumber;

use crate::error::{Error, Result};

/// A fresh random serial number that is not in `taken` (the serials this CA already issued).
pub fn random_serial_excluding(taken: &std::collections::HashSet<Vec<u8>>) -> Result<SerialNumber> {
    loop {
        let serial = random_serial()?;
        if !taken.contains(serial.as_bytes()) {
            return Ok(serial);
        }
    }
}

/// A fresh random serial number.
pub fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 20];
    loop {
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::invalid(
                format!("the system random number generator failed: {e}"),
                "serials must be random; fix the system RNG, hsmca will not fall back to a counter",
            )
        })?;
        bytes[0] &= 0x7f;
        // A leading zero octet would be dropped from the encoding and shorten the serial.
        if bytes[0] != 0 {
            break;
        }
    }
    SerialNumber::new(&bytes).map_err(|e| Error::invalid(format!("serial: {e}"), "report a bug"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_20_octets_and_distinct() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 20);
        assert!(a.as_bytes()[0] & 0x80 == 0 && a.as_bytes()[0] != 0);
    }
}
