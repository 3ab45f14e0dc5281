//! The Ed25519 point checks that AWS-LC's verifier does not make, so that hsmca accepts the
//! keys and signatures it accepted with ed25519-dalek's strict verification:
//!
//! - a public key must be the encoding of a curve point, checked when the key is read rather
//!   than at the first verification; unlike ed25519-dalek, a y coordinate of p or more (the
//!   19 non-canonical encodings RFC 8032 §5.1.3 says to refuse) is refused, because AWS-LC's
//!   verifier refuses it on some platforms and not others;
//! - neither the public key nor a signature's R may be a point of small order (the 8-torsion
//!   subgroup), which the plain RFC 8032 verification equation lets through.

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{JacobiSymbol, Odd, U256};

/// p = 2^255 − 19.
const P: Odd<U256> =
    Odd::<U256>::from_be_hex("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed");
/// Montgomery arithmetic mod p.
const FIELD: FixedMontyParams<{ U256::LIMBS }> = FixedMontyParams::new_vartime(P);
/// d = −121665 / 121666 mod p, the curve constant.
const D: U256 =
    U256::from_be_hex("52036cee2b6ffe738cc740797779e89800700a4d4141d8ab75eb4dca135978a3");

/// The y coordinates (little endian) of the eight points of small order: 1 (the identity),
/// p − 1 (order 2), 0 (the two points of order 4) and the two of the four points of order 8.
/// The sign bit of x is ignored: each y stands for a point and its negative.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [
        0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [0; 32],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Why a public key's 32 bytes are not a usable Ed25519 point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PointError {
    /// y ≥ p: a non-canonical encoding.
    NonCanonical,
    /// No x satisfies the curve equation for this y.
    NotOnCurve,
}

/// The y coordinate: the 255 low bits, little endian (the top bit is the sign of x).
fn y_of(encoded: &[u8; 32]) -> [u8; 32] {
    let mut y = *encoded;
    y[31] &= 0x7f;
    y
}

/// Checks that `encoded` is the canonical encoding of a point of edwards25519: y < p and
/// (y² − 1) / (d·y² + 1) is a square mod p or zero (then an x exists). As in ed25519-dalek, the
/// sign bit is not checked against x = 0: only the two small-order points have x = 0, and
/// [`is_small_order`] refuses those in every signature.
pub(crate) fn check_public_key(encoded: &[u8; 32]) -> Result<(), PointError> {
    let y = U256::from_le_slice(&y_of(encoded));
    if &y >= P.as_ref() {
        return Err(PointError::NonCanonical);
    }
    let one = FixedMontyForm::new(&U256::ONE, &FIELD);
    let y = FixedMontyForm::new(&y, &FIELD);
    let yy = y.square();
    let u = yy - one;
    let v = FixedMontyForm::new(&D, &FIELD) * yy + one;
    // u/v is a square exactly when u·v is (v is never 0: −1/d is not a square mod p); the
    // Legendre symbol tells, in a few µs where Euler's criterion takes 25 (a key is public:
    // variable time is fine).
    match (u * v).jacobi_symbol_vartime() {
        JacobiSymbol::One | JacobiSymbol::Zero => Ok(()),
        JacobiSymbol::MinusOne => Err(PointError::NotOnCurve),
    }
}

/// Whether `encoded` encodes a point of small order (the identity, or order 2, 4 or 8), under
/// either sign of x. Only canonical encodings are listed: a non-canonical R never equals the
/// canonical encoding the verifier computes, and public keys are checked canonical first.
pub(crate) fn is_small_order(encoded: &[u8; 32]) -> bool {
    SMALL_ORDER_Y.contains(&y_of(encoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn rfc_8032_keys_are_points() {
        // The public keys of RFC 8032 §7.1, tests 1 to 3.
        for key in [
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        ] {
            let key = hex32(key);
            assert_eq!(check_public_key(&key), Ok(()));
            assert!(!is_small_order(&key));
        }
    }

    #[test]
    fn the_base_point_is_on_the_curve_and_its_y_plus_one_is_not() {
        // B's y = 4/5: 0x6666...58 little endian.
        let mut b = [0x66u8; 32];
        b[0] = 0x58;
        assert_eq!(check_public_key(&b), Ok(()));
        // y = 2 is not the y of any point: (4 − 1)/(4d + 1) is not a square.
        let mut two = [0u8; 32];
        two[0] = 2;
        assert_eq!(check_public_key(&two), Err(PointError::NotOnCurve));
    }

    #[test]
    fn non_canonical_y_is_refused() {
        // y = p + 1, an encoding of the identity that ed25519-dalek accepts.
        let mut y = SMALL_ORDER_Y[1];
        y[0] = 0xee;
        assert_eq!(check_public_key(&y), Err(PointError::NonCanonical));
        // y = 2^255 − 1.
        assert_eq!(check_public_key(&[0xff; 32]), Err(PointError::NonCanonical));
    }

    #[test]
    fn small_order_points_are_points_and_are_recognised() {
        for y in SMALL_ORDER_Y {
            assert_eq!(check_public_key(&y), Ok(()), "{}", hex::encode(y));
            assert!(is_small_order(&y));
            let mut negated = y;
            negated[31] |= 0x80;
            assert!(is_small_order(&negated));
        }
    }
}
