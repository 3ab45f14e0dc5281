//! Certificate serial numbers: 20 CSPRNG bytes, top bit cleared, so positive and at most 20
//! octets with 159 random bits. An RNG failure is an error, never a fallback.

use std::collections::HashSet;

use x509_cert::serial_number::SerialNumber;

use super::error::{Result, X509Error};

/// A set of serial numbers (their content octets). Serials of 20 octets, all hsmca issues,
/// are kept inline (no allocation per serial); any other length in a set of its own.
#[derive(Debug, Default, Clone)]
pub struct Serials {
    full: HashSet<[u8; 20]>,
    other: HashSet<Vec<u8>>,
}

impl Serials {
    /// An empty set.
    pub fn new() -> Serials {
        Serials::default()
    }

    /// Whether `serial` is in the set.
    pub fn contains(&self, serial: &[u8]) -> bool {
        match <&[u8; 20]>::try_from(serial) {
            Ok(full) => self.full.contains(full),
            Err(_) => self.other.contains(serial),
        }
    }

    /// Adds `serial`.
    pub fn insert(&mut self, serial: &[u8]) {
        match <[u8; 20]>::try_from(serial) {
            Ok(full) => {
                self.full.insert(full);
            }
            Err(_) => {
                self.other.insert(serial.to_vec());
            }
        }
    }

    /// Adds every serial of `more`.
    pub fn extend(&mut self, more: Serials) {
        self.full.extend(more.full);
        self.other.extend(more.other);
    }

    /// How many serials the set holds.
    pub fn len(&self) -> usize {
        self.full.len() + self.other.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for Serials {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Serials {
        let mut s = Serials::new();
        for serial in iter {
            s.insert(serial.as_ref());
        }
        s
    }
}

/// A fresh random serial number whose content octets `free` accepts.
pub fn random_serial_where(free: impl Fn(&[u8]) -> bool) -> Result<SerialNumber> {
    loop {
        let serial = random_serial()?;
        if free(serial.as_bytes()) {
            return Ok(serial);
        }
    }
}

/// A fresh random serial number.
pub fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 20];
    loop {
        getrandom::fill(&mut bytes).map_err(|e| {
            X509Error::refused(
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
    SerialNumber::new(&bytes).map_err(|e| X509Error::internal(format!("serial: {e}")))
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

    #[test]
    fn serial_sets_hold_any_length() {
        let a = random_serial().unwrap();
        let mut set: Serials = [vec![1u8, 2, 3]].into_iter().collect();
        assert!(set.contains(&[1, 2, 3]) && !set.contains(a.as_bytes()));
        set.insert(a.as_bytes());
        assert!(set.contains(a.as_bytes()) && set.len() == 2);
        assert!(!set.contains(&[1, 2]));
    }
}
