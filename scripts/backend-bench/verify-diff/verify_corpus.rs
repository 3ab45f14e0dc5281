//! Reads gen_corpus.py's cases and prints, per case, what hsmca makes of the key and of the
//! signature (scripts/backend-bench/verify-diff.sh builds it as an example of each revision).

use der::Decode;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
fn main() {
    let text = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let b = |i: usize| hex::decode(f[i]).unwrap();
        let spki = match SubjectPublicKeyInfoOwned::from_der(&b(1)) {
            Ok(s) => s,
            Err(e) => {
                println!("{} spki-der-error {e}", f[0]);
                continue;
            }
        };
        let alg = match AlgorithmIdentifierOwned::from_der(&b(2)) {
            Ok(s) => s,
            Err(e) => {
                println!("{} alg-der-error {e}", f[0]);
                continue;
            }
        };
        let info = hsmca::x509::algorithm::PublicKeyInfo::from_spki(&spki)
            .map(|i| i.to_string())
            .map_err(|e| {
                format!("{e:?}")
                    .split([' ', '{', '('])
                    .next()
                    .unwrap()
                    .to_owned()
            });
        let r = hsmca::x509::verify::verify_signature(&spki, &alg, &b(3), &b(4));
        let r = match r {
            Ok(()) => "OK".to_owned(),
            Err(e) => format!("{e:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap()
                .to_owned(),
        };
        println!("{} key={:?} verify={}", f[0], info, r);
    }
}
