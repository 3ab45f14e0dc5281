//! Strict reading of PEM and DER inputs (certificates, and the shared PEM/DER plumbing that
//! CSRs and inspection use), and PEM writing.
//!
//! Strict means: empty input, truncated PEM, wrong labels, stray boundary lines, binary bytes
//! outside PEM blocks and DER with trailing bytes are all refused with a message saying what
//! to fix, because a CA that guesses what a damaged file meant can sign the wrong thing.
//! Explanatory text around the blocks is read past, as RFC 7468 §5.2 asks: certtool writes a
//! request's text dump before its block, `openssl x509 -text` a certificate's. CRLF line ends
//! and DER are read too.

use der::pem::{self, LineEnding};
use der::{Decode, Encode, ErrorKind};
use x509_cert::Certificate;

use super::error::X509Error;

/// PEM label of a certificate.
pub const CERTIFICATE_LABEL: &str = "CERTIFICATE";
/// PEM label of a PKCS#10 certificate request.
pub const CSR_LABEL: &str = "CERTIFICATE REQUEST";
/// Legacy PEM label of a PKCS#10 request (Netscape, some Windows tools).
pub const NEW_CSR_LABEL: &str = "NEW CERTIFICATE REQUEST";
/// PEM label of a CRL.
pub const CRL_LABEL: &str = "X509 CRL";
/// PEM label of a SubjectPublicKeyInfo.
pub const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// A certificate together with the exact DER bytes it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCertificate {
    /// The decoded certificate.
    pub certificate: Certificate,
    /// Its DER encoding as found in the input (signatures are over these bytes).
    pub der: Vec<u8>,
}

/// Reads one or more certificates: PEM with one or more CERTIFICATE blocks, or a single DER
/// certificate.
pub fn load_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, X509Error> {
    Ok(load_certificates_with_der(bytes)?
        .into_iter()
        .map(|p| p.certificate)
        .collect())
}

/// Like [`load_certificates`], keeping each certificate's DER bytes.
pub fn load_certificates_with_der(bytes: &[u8]) -> Result<Vec<ParsedCertificate>, X509Error> {
    const WHAT: &str = "certificate";
    let ders = match read_input(bytes, WHAT)? {
        Input::Der(der) => vec![der.to_vec()],
        Input::Pem(blocks) => blocks
            .into_iter()
            .map(|b| b.expect_label(WHAT, &[CERTIFICATE_LABEL], CERTIFICATE_LABEL))
            .collect::<Result<_, _>>()?,
    };
    ders.into_iter()
        .map(|der| {
            let certificate = decode_der(&der, WHAT)?;
            Ok(ParsedCertificate { certificate, der })
        })
        .collect()
}

/// Reads exactly one certificate (PEM or DER); a chain or bundle is refused with the count.
pub fn load_certificate(bytes: &[u8]) -> Result<Certificate, X509Error> {
    Ok(load_certificate_with_der(bytes)?.certificate)
}

/// Like [`load_certificate`], keeping the certificate's DER bytes.
pub fn load_certificate_with_der(bytes: &[u8]) -> Result<ParsedCertificate, X509Error> {
    let mut certs = load_certificates_with_der(bytes)?;
    match certs.len() {
        1 => Ok(certs.remove(0)),
        found => Err(X509Error::WrongCount {
            what: "certificate",
            found,
        }),
    }
}

/// Encodes DER as PEM with `label`, 64-column base64 and LF line endings.
pub fn to_pem(label: &str, der: &[u8]) -> Result<String, X509Error> {
    pem::encode_string(label, LineEnding::LF, der).map_err(|e| X509Error::Encode {
        what: "PEM text",
        source: e.into(),
    })
}

/// Encodes a certificate as a PEM CERTIFICATE block.
pub fn certificate_to_pem(cert: &Certificate) -> Result<String, X509Error> {
    let der = cert.to_der().map_err(|source| X509Error::Encode {
        what: "certificate",
        source,
    })?;
    to_pem(CERTIFICATE_LABEL, &der)
}

/// Encodes certificates as consecutive PEM CERTIFICATE blocks (a chain, leaf first).
pub fn certificates_to_pem(certs: &[&Certificate]) -> Result<String, X509Error> {
    let mut pem = String::new();
    for cert in certs {
        pem.push_str(&certificate_to_pem(cert)?);
    }
    Ok(pem)
}

/// The input after the PEM/DER decision.
pub(crate) enum Input<'a> {
    /// Binary input, to be decoded as one DER object.
    Der(&'a [u8]),
    /// One or more PEM blocks, already base64-decoded.
    Pem(Vec<PemBlock>),
}

/// One decoded PEM block.
#[derive(Debug)]
pub(crate) struct PemBlock {
    /// The label of the BEGIN line.
    pub(crate) label: String,
    /// The decoded contents.
    pub(crate) der: Vec<u8>,
    /// 1-based line of the BEGIN line, for messages.
    pub(crate) line: usize,
}

impl PemBlock {
    /// The block's DER if its label is one of `accepted`, else a wrong-label error.
    pub(crate) fn expect_label(
        self,
        what: &'static str,
        accepted: &[&str],
        expected: &'static str,
    ) -> Result<Vec<u8>, X509Error> {
        if accepted.contains(&self.label.as_str()) {
            Ok(self.der)
        } else {
            Err(X509Error::WrongPemLabel {
                what,
                expected,
                found: self.label,
                line: self.line,
            })
        }
    }
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";

/// Decides between PEM and DER and splits PEM into blocks.
pub(crate) fn read_input<'a>(bytes: &'a [u8], what: &'static str) -> Result<Input<'a>, X509Error> {
    let Some(first) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(X509Error::EmptyInput { what });
    };
    // PEM is text; DER of anything we read has length bytes >= 0x80, which are not UTF-8 on
    // their own, so text that holds a BEGIN line is PEM even when it starts with '0' (0x30,
    // the SEQUENCE tag).
    if bytes[first..].starts_with(BEGIN)
        || (std::str::from_utf8(bytes).is_ok() && find(bytes, BEGIN).is_some())
    {
        return parse_pem_blocks(bytes, what).map(Input::Pem);
    }
    // Binary (or unrecognisable) input: the DER decoder says what is wrong with it.
    Ok(Input::Der(bytes))
}

/// Reads exactly one object with one of the `accepted` PEM labels, or one DER object, and
/// returns its DER.
pub(crate) fn read_single(
    bytes: &[u8],
    what: &'static str,
    accepted: &[&str],
    expected: &'static str,
) -> Result<Vec<u8>, X509Error> {
    match read_input(bytes, what)? {
        Input::Der(der) => Ok(der.to_vec()),
        Input::Pem(mut blocks) => {
            if blocks.len() != 1 {
                return Err(X509Error::WrongCount {
                    what,
                    found: blocks.len(),
                });
            }
            blocks.remove(0).expect_label(what, accepted, expected)
        }
    }
}

/// Splits PEM text into blocks, refusing anything but whitespace outside them.
fn parse_pem_blocks(bytes: &[u8], what: &'static str) -> Result<Vec<PemBlock>, X509Error> {
    let malformed = |detail: String| X509Error::MalformedPem { what, detail };
    let mut blocks = Vec::new();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos == bytes.len() {
            break;
        }
        let rest = &bytes[pos..];
        let line = line_of(bytes, pos);
        if !rest.starts_with(BEGIN) {
            // Explanatory text: a whole line of text with no boundary in it.
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let text = std::str::from_utf8(&rest[..end])
                .ok()
                .filter(|t| !t.chars().any(|c| c.is_control() && !c.is_whitespace()));
            if text.is_none() || has_boundary(&rest[..end]) {
                return Err(X509Error::TextOutsidePem { what, line });
            }
            pos += end;
            continue;
        }
        let begin_label = boundary_label(&rest[BEGIN.len()..])
            .ok_or_else(|| malformed(format!("the BEGIN line at line {line} is incomplete")))?;
        let Some(end_at) = find(rest, END) else {
            return Err(malformed(format!(
                "the block \"{begin_label}\" that begins at line {line} has no -----END line; \
                 the file is truncated"
            )));
        };
        if let Some(next_begin) = find(&rest[BEGIN.len()..end_at], BEGIN) {
            return Err(malformed(format!(
                "the block \"{begin_label}\" that begins at line {line} ends without an \
                 -----END line before the next block at line {}; it was truncated",
                line_of(bytes, pos + BEGIN.len() + next_begin)
            )));
        }
        let end_line = line_of(bytes, pos + end_at);
        let end_label = boundary_label(&rest[end_at + END.len()..]).ok_or_else(|| {
            malformed(format!(
                "the END line at line {end_line} is incomplete; the file is truncated"
            ))
        })?;
        if end_label != begin_label {
            return Err(malformed(format!(
                "the block that begins at line {line} as \"{begin_label}\" ends at line \
                 {end_line} as \"{end_label}\""
            )));
        }
        let block_len = end_at + END.len() + end_label.len() + DASHES.len();
        let block = &rest[..block_len];
        let der = decode_pem_block(block)
            .map_err(|e| malformed(format!("in the block that begins at line {line}: {e}")))?;
        blocks.push(PemBlock {
            label: begin_label.to_owned(),
            der,
            line,
        });
        pos += block_len;
    }
    Ok(blocks)
}

/// Whether a line of text outside the blocks holds a BEGIN or END boundary (one not at the
/// start of its line, or an END with no BEGIN): a damaged file, never explanatory text.
fn has_boundary(line: &[u8]) -> bool {
    find(line, BEGIN).is_some() || find(line, END).is_some()
}

/// The label of a boundary line, given the bytes after "-----BEGIN " or "-----END ": the
/// text up to the closing dashes, which must sit on the same line.
fn boundary_label(after: &[u8]) -> Option<&str> {
    let line_end = after
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(after.len());
    let line = &after[..line_end];
    let close = find(line, DASHES)?;
    // The dashes must end the line (trailing blanks tolerated, as many tools add them).
    if !line[close + DASHES.len()..]
        .iter()
        .all(|b| *b == b' ' || *b == b'\t')
    {
        return None;
    }
    core::str::from_utf8(&line[..close]).ok()
}

/// Base64-decodes one block with pem-rfc7468, accepting any consistent line width.
fn decode_pem_block(block: &[u8]) -> Result<Vec<u8>, pem::Error> {
    let mut decoder = pem::Decoder::new_detect_wrap(block)?;
    let mut der = Vec::new();
    decoder.decode_to_end(&mut der)?;
    Ok(der)
}

/// Decodes one DER object, refusing trailing bytes with their count.
pub(crate) fn decode_der<'a, T>(bytes: &'a [u8], what: &'static str) -> Result<T, X509Error>
where
    T: Decode<'a, Error = der::Error>,
{
    T::from_der(bytes).map_err(|e| der_error(what, e))
}

/// Maps a der error to ours, giving trailing data its own message.
pub(crate) fn der_error(what: &'static str, source: der::Error) -> X509Error {
    match source.kind() {
        ErrorKind::TrailingData { decoded, remaining } => X509Error::TrailingData {
            what,
            decoded: decoded.into(),
            remaining: remaining.into(),
        },
        _ => X509Error::MalformedDer { what, source },
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// 1-based line number of byte offset `pos`.
fn line_of(bytes: &[u8], pos: usize) -> usize {
    bytes[..pos].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn cert_pem(name: &str) -> (String, Vec<u8>) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), cert.der().to_vec())
    }

    #[test]
    fn single_pem_and_der() {
        let (pem, der) = cert_pem("a.example");
        let from_pem = load_certificate_with_der(pem.as_bytes()).unwrap();
        assert_eq!(from_pem.der, der);
        let from_der = load_certificate(&der).unwrap();
        assert_eq!(from_der, from_pem.certificate);
    }

    #[test]
    fn pem_chain_with_crlf_and_blank_lines() {
        let (a, _) = cert_pem("a.example");
        let (b, _) = cert_pem("b.example");
        let text = format!("\n{a}\n\n{}", b.replace('\n', "\r\n"));
        let certs = load_certificates(text.as_bytes()).unwrap();
        assert_eq!(certs.len(), 2);
        let err = load_certificate(text.as_bytes()).unwrap_err();
        assert!(
            matches!(err, X509Error::WrongCount { found: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("holds 2"));
    }

    #[test]
    fn empty_input_is_refused() {
        for input in [&b""[..], b"  \n\t\r\n"] {
            let err = load_certificates(input).unwrap_err();
            assert!(matches!(err, X509Error::EmptyInput { .. }), "{err:?}");
        }
    }

    #[test]
    fn truncated_pem_is_refused() {
        let (pem, _) = cert_pem("a.example");
        let cut = &pem[..pem.len() / 2];
        let err = load_certificates(cut.as_bytes()).unwrap_err();
        assert!(matches!(err, X509Error::MalformedPem { .. }), "{err:?}");
        assert!(err.to_string().contains("truncated"), "{err}");

        // A block cut short and followed by another one.
        let (b, _) = cert_pem("b.example");
        let glued = format!("{cut}\n{b}");
        let err = load_certificates(glued.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");

        // Base64 cut in the middle but END line present.
        let lines: Vec<&str> = pem.lines().collect();
        let mut short = lines.clone();
        short.remove(2);
        let err = load_certificates(short.join("\n").as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                X509Error::MalformedPem { .. } | X509Error::MalformedDer { .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_label_is_refused() {
        let (pem, _) = cert_pem("a.example");
        let relabelled = pem.replace("CERTIFICATE", "X509 CRL");
        let err = load_certificates(relabelled.as_bytes()).unwrap_err();
        match err {
            X509Error::WrongPemLabel { found, line, .. } => {
                assert_eq!(found, "X509 CRL");
                assert_eq!(line, 1);
            }
            other => panic!("{other:?}"),
        }
        let mismatched = pem.replacen("END CERTIFICATE", "END PUBLIC KEY", 1);
        let err = load_certificates(mismatched.as_bytes()).unwrap_err();
        assert!(matches!(err, X509Error::MalformedPem { .. }), "{err:?}");
    }

    #[test]
    fn text_outside_blocks_is_read_past_but_not_boundaries_or_binary() {
        let (a, der_a) = cert_pem("a.example");
        let (b, _) = cert_pem("b.example");
        for text in [
            format!("Certificate:\n    Data:\n        Subject: CN=서울\n{a}"),
            format!("{a}note between\n{b}"),
            format!("0 starts like DER\n{a}trailing words"),
            format!("subject=CN=x\r\n{}", a.replace('\n', "\r\n")),
        ] {
            let certs = load_certificates(text.as_bytes()).unwrap();
            assert_eq!(certs[0].to_der().unwrap(), der_a, "{text}");
        }
        for text in [
            format!("text -----END CERTIFICATE-----\n{a}"),
            format!("{a}see -----BEGIN CERTIFICATE----- below\n"),
            format!("bell \u{7} in text\n{a}"),
        ] {
            let err = load_certificates(text.as_bytes()).unwrap_err();
            assert!(
                matches!(err, X509Error::TextOutsidePem { .. }),
                "{text}: {err:?}"
            );
        }
        let mut binary = vec![0xffu8, 0xfe, b'\n'];
        binary.extend_from_slice(a.as_bytes());
        assert!(load_certificates(&binary).is_err());
    }

    #[test]
    fn der_with_trailing_bytes_is_refused() {
        let (_, der) = cert_pem("a.example");
        let mut long = der.clone();
        long.extend_from_slice(&[0, 0, 0]);
        let err = load_certificates(&long).unwrap_err();
        match err {
            X509Error::TrailingData {
                remaining, decoded, ..
            } => {
                assert_eq!(remaining, 3);
                assert_eq!(decoded as usize, der.len());
            }
            other => panic!("{other:?}"),
        }
        // Two DER certificates glued together are refused the same way.
        let mut two = der.clone();
        two.extend_from_slice(&der);
        assert!(matches!(
            load_certificates(&two),
            Err(X509Error::TrailingData { .. })
        ));
    }

    #[test]
    fn truncated_der_and_garbage_are_refused() {
        let (_, der) = cert_pem("a.example");
        let err = load_certificates(&der[..der.len() - 10]).unwrap_err();
        assert!(matches!(err, X509Error::MalformedDer { .. }), "{err:?}");
        let err = load_certificates(b"hello world").unwrap_err();
        assert!(matches!(err, X509Error::MalformedDer { .. }), "{err:?}");
    }

    #[test]
    fn to_pem_round_trips_with_lf() {
        let (_, der) = cert_pem("a.example");
        let pem = to_pem(CERTIFICATE_LABEL, &der).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"));
        assert!(!pem.contains('\r'));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = load_certificate_with_der(pem.as_bytes()).unwrap();
        assert_eq!(back.der, der);
        assert_eq!(
            certificate_to_pem(&back.certificate).unwrap(),
            pem,
            "decode then encode gives the same bytes"
        );
    }
}
