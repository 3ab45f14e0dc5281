//! Errors of the certificate layer: each message names the cause and the fix, so that a
//! ceremony operator can act on it without reading the source.

use const_oid::ObjectIdentifier;

/// Everything that can go wrong while reading, checking or describing X.509 objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum X509Error {
    /// The input holds no bytes (or only whitespace).
    #[error("the {what} input is empty: the file holds no data (or only whitespace)")]
    EmptyInput {
        /// What the input should have held ("certificate", "CSR", ...).
        what: &'static str,
    },

    /// A PEM block could not be decoded (bad base64, headers, missing END line...).
    #[error(
        "the {what} PEM text is malformed ({detail}): the file is truncated, was edited, or is \
         not RFC 7468 PEM"
    )]
    MalformedPem {
        /// What the input should have held.
        what: &'static str,
        /// What exactly is wrong, with the line where it was found when known.
        detail: String,
    },

    /// A PEM block carries a label other than the one(s) expected.
    #[error(
        "the PEM block at line {line} is labelled \"{found}\" where a {what} ({expected}) was \
         expected: the file holds another kind of object"
    )]
    WrongPemLabel {
        /// What the input should have held.
        what: &'static str,
        /// The label(s) accepted, as shown to the user.
        expected: &'static str,
        /// The label found in the file.
        found: String,
        /// 1-based line of the BEGIN line.
        line: usize,
    },

    /// Binary bytes, control characters or a stray BEGIN/END boundary outside PEM blocks
    /// (explanatory text is allowed there).
    #[error(
        "the {what} file has binary data or a stray -----BEGIN/-----END boundary at line {line}, \
         outside any PEM block: the file was concatenated with something else or damaged"
    )]
    TextOutsidePem {
        /// What the input should have held.
        what: &'static str,
        /// 1-based line of the stray text.
        line: usize,
    },

    /// The bytes are not valid DER for the expected structure.
    #[error(
        "the {what} is not valid DER ({source}): the data is damaged, truncated, or is another \
         kind of object"
    )]
    MalformedDer {
        /// What the input should have held.
        what: &'static str,
        /// The decoder's own error.
        #[source]
        source: der::Error,
    },

    /// A DER object is followed by more bytes.
    #[error(
        "the {what} is followed by {remaining} unexpected bytes after its {decoded}-byte DER \
         encoding: the file holds two objects glued together or trailing garbage"
    )]
    TrailingData {
        /// What the input should have held.
        what: &'static str,
        /// Length of the object that decoded.
        decoded: u32,
        /// Bytes left over after it.
        remaining: u32,
    },

    /// One object was expected but the input holds another number of them.
    #[error(
        "expected exactly one {what} but the input holds {found}: a chain or bundle was given \
         where a single object is needed"
    )]
    WrongCount {
        /// What the input should have held.
        what: &'static str,
        /// How many were found.
        found: usize,
    },

    /// The input could not be recognised as any supported kind of object.
    #[error(
        "the input is not a certificate, certificate chain, CSR, CRL or public key in PEM or DER \
         form ({detail})"
    )]
    UnrecognizedInput {
        /// What was tried and why it failed.
        detail: String,
    },

    /// The signature algorithm OID is not one this CA supports.
    #[error(
        "signature algorithm {oid} ({name}) is not supported: only ECDSA with SHA-256/384, RSA \
         PKCS#1 v1.5 or RSA-PSS with SHA-256/384/512, and Ed25519 are accepted"
    )]
    UnsupportedSignatureAlgorithm {
        /// The OID found.
        oid: ObjectIdentifier,
        /// Its name in the OID database, or "unknown".
        name: &'static str,
    },

    /// SHA-1 based signatures are refused outright.
    #[error("signature algorithm {oid} uses SHA-1, which is broken for signatures and refused")]
    Sha1Signature {
        /// The OID found.
        oid: ObjectIdentifier,
    },

    /// The parameters of a known algorithm are wrong (present where they must be absent,
    /// or RSA-PSS parameters that do not match the profile).
    #[error("the parameters of algorithm {oid} are not acceptable: {detail}")]
    BadAlgorithmParameters {
        /// The algorithm OID.
        oid: ObjectIdentifier,
        /// What is wrong with the parameters.
        detail: String,
    },

    /// The public key algorithm OID is unknown.
    #[error(
        "public key algorithm {oid} ({name}) is not supported: only EC P-256, EC P-384, RSA (2048 \
         to 8192 bits) and Ed25519 keys are accepted"
    )]
    UnsupportedKeyAlgorithm {
        /// The OID found.
        oid: ObjectIdentifier,
        /// Its name in the OID database, or "unknown".
        name: &'static str,
    },

    /// The EC key names a curve other than P-256 or P-384.
    #[error(
        "the EC key uses curve {oid} ({name}), which is not supported: only P-256 (secp256r1) and \
         P-384 (secp384r1) are accepted"
    )]
    UnsupportedCurve {
        /// The curve OID found.
        oid: ObjectIdentifier,
        /// Its name in the OID database, or "unknown".
        name: &'static str,
    },

    /// An RSA key shorter than 2048 bits.
    #[error(
        "the RSA key has a {bits}-bit modulus, which is too weak: at least 2048 bits are required"
    )]
    WeakRsaKey {
        /// Modulus length in bits.
        bits: u32,
    },

    /// An RSA key that decodes but must not be certified ([`super::weak_rsa`]).
    #[error("the RSA key cannot be certified: {why}")]
    BrokenRsaKey {
        /// What is wrong with it.
        why: String,
    },

    /// An RSA key longer than 8192 bits.
    #[error(
        "the RSA key has a {bits}-bit modulus, larger than the 8192 bits this tool accepts \
         (larger keys make verification a denial-of-service risk)"
    )]
    OversizedRsaKey {
        /// Modulus length in bits.
        bits: u32,
    },

    /// The public key bytes do not form a valid key of the stated type.
    #[error(
        "the {kind} public key is malformed ({detail}): the key bytes are damaged or were encoded \
         wrongly"
    )]
    MalformedPublicKey {
        /// Key type ("EC P-256", "RSA", ...).
        kind: &'static str,
        /// What is wrong.
        detail: String,
    },

    /// The signature algorithm cannot be used with the key's type.
    #[error(
        "signature algorithm {signature} cannot be used with a {key} key: the object claims an \
         algorithm of another key type"
    )]
    AlgorithmKeyMismatch {
        /// The signature algorithm, as displayed.
        signature: String,
        /// The key, as displayed.
        key: String,
    },

    /// The signature value is not encoded as the algorithm requires.
    #[error(
        "the signature value is malformed ({detail}): it is not encoded as {algorithm} requires"
    )]
    MalformedSignature {
        /// The signature algorithm, as displayed.
        algorithm: String,
        /// What is wrong.
        detail: String,
    },

    /// A signature does not verify with the given key.
    #[error("the signature does not verify: the data was altered or was signed with another key")]
    BadSignature,

    /// A CSR's self-signature does not verify.
    #[error(
        "the CSR's signature does not verify: the request was altered or signed with another key \
         than the one it contains"
    )]
    BadCsrSignature,

    /// A certificate's signature does not verify with the issuer key given.
    #[error(
        "the certificate's signature does not verify with the issuer's public key: it was \
         altered, or issued by another CA key"
    )]
    BadCertificateSignature,

    /// The algorithm inside the TBS differs from the outer signatureAlgorithm.
    #[error(
        "the certificate's inner signature algorithm ({inner}) differs from its outer one \
         ({outer}): RFC 5280 requires them to be equal and a mismatch hints at tampering"
    )]
    SignatureAlgorithmMismatch {
        /// tbsCertificate.signature, as displayed.
        inner: String,
        /// Certificate.signatureAlgorithm, as displayed.
        outer: String,
    },

    /// An extension (or the CSR's extension request) could not be decoded.
    #[error("extension {oid} ({name}) is malformed ({source}): its value does not decode")]
    MalformedExtension {
        /// Extension OID.
        oid: ObjectIdentifier,
        /// Its name in the OID database, or "unknown".
        name: &'static str,
        /// The decoder's error.
        #[source]
        source: der::Error,
    },

    /// The same extension appears more than once.
    #[error(
        "extension {oid} ({name}) appears more than once: RFC 5280 allows one instance of each \
         extension"
    )]
    DuplicateExtension {
        /// Extension OID.
        oid: ObjectIdentifier,
        /// Its name in the OID database, or "unknown".
        name: &'static str,
    },

    /// The CSR's extensionRequest attribute is malformed or repeated.
    #[error("the CSR's extensionRequest attribute is malformed ({detail})")]
    MalformedExtensionRequest {
        /// What is wrong.
        detail: String,
    },

    /// A key algorithm name given on the command line is unknown.
    #[error(
        "unknown key algorithm \"{name}\": accepted names are ecdsa-p256, ecdsa-p384, rsa-2048, \
         rsa-3072, rsa-4096, ed25519"
    )]
    UnknownKeyAlgorithmName {
        /// The name given.
        name: String,
    },

    /// A signature algorithm name given on the command line is unknown.
    #[error(
        "unknown signature algorithm \"{name}\": accepted names are ecdsa-sha256, ecdsa-sha384, \
         rsa-pkcs1-sha256, rsa-pkcs1-sha384, rsa-pkcs1-sha512, rsa-pss-sha256, rsa-pss-sha384, \
         rsa-pss-sha512, ed25519"
    )]
    UnknownSignatureAlgorithmName {
        /// The name given.
        name: String,
    },

    /// Encoding a value to DER or PEM failed (sizes beyond der's limits).
    #[error(
        "could not encode the {what} ({source}): the object is larger than DER allows or holds an \
         invalid value"
    )]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: der::Error,
    },

    /// A request that is well formed but that this CA does not honour (a validity past the
    /// issuer's, a name outside its constraints, ...).
    #[error("{message}")]
    Refused {
        /// The cause.
        message: String,
        /// The fix.
        hint: String,
    },

    /// The signer failed: the token layer's error, carried through unchanged.
    #[error(transparent)]
    Signer(#[from] SignError),

    /// An internal invariant of this tool does not hold: a bug, not bad input.
    #[error("internal error: {what}")]
    Internal {
        /// Which invariant.
        what: String,
    },
}

/// Result with the certificate layer's [`X509Error`].
pub type Result<T, E = X509Error> = std::result::Result<T, E>;

/// What to tell an operator who hits an internal error.
pub const REPORT_BUG: &str =
    "this is a bug in hsmca, not a problem with your input: report it with the command that failed";

impl X509Error {
    /// How to fix it: one line an operator can act on.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            X509Error::EmptyInput { .. } => "check that you gave the right file and that it was copied completely".into(),
            X509Error::MalformedPem { what, .. } => format!("export the {what} again, in PEM or DER"),
            X509Error::WrongPemLabel { what, .. } => format!("give the file that holds the {what}"),
            X509Error::TextOutsidePem { .. } => "keep the blocks and plain text only".into(),
            X509Error::MalformedDer { what, .. } => format!("export the {what} again, in PEM or DER"),
            X509Error::TrailingData { .. } => "give a file with exactly one DER object (or use PEM for several certificates)".into(),
            X509Error::WrongCount { .. } => "split the file and give only the one meant".into(),
            X509Error::UnrecognizedInput { .. } => "check that you gave the right file".into(),
            X509Error::UnsupportedSignatureAlgorithm { .. } => "have the object signed with one of those".into(),
            X509Error::BadAlgorithmParameters { .. } => "have the object signed or encoded again with standard parameters".into(),
            X509Error::UnsupportedKeyAlgorithm { .. } => "generate the key with one of those".into(),
            X509Error::UnsupportedCurve { .. } => "generate the key on one of those curves".into(),
            X509Error::WeakRsaKey { .. } => "generate a new key of 2048, 3072 or 4096 bits".into(),
            X509Error::BrokenRsaKey { .. } => "the key's owner must generate a new key pair (2048 to 4096 bits, public exponent 65537) with a sound library".into(),
            X509Error::OversizedRsaKey { .. } => "use a key of 2048 to 4096 bits".into(),
            X509Error::MalformedPublicKey { .. } => "export the public key (or CSR) again".into(),
            X509Error::AlgorithmKeyMismatch { .. } => "sign it again with an algorithm that matches the key".into(),
            X509Error::MalformedSignature { .. } => "the object was damaged or produced by a faulty signer, so sign it again".into(),
            X509Error::BadSignature => "check that the right key was given, and obtain the signed object again".into(),
            X509Error::BadCsrSignature => "ask the requester for a new CSR".into(),
            X509Error::BadCertificateSignature => "check that you gave the right issuer certificate".into(),
            X509Error::SignatureAlgorithmMismatch { .. } => "do not trust this certificate and have it issued again".into(),
            X509Error::MalformedExtension { .. } => "have the object produced again by a conforming tool".into(),
            X509Error::DuplicateExtension { .. } => "have the object produced again with each extension once".into(),
            X509Error::MalformedExtensionRequest { .. } => "ask the requester for a new CSR made by a conforming tool".into(),
            X509Error::UnknownKeyAlgorithmName { .. } => "pick one of those".into(),
            X509Error::UnknownSignatureAlgorithmName { .. } => "pick one of those".into(),
            X509Error::Encode { .. } => {
                "if the object came from this tool this is a bug, so report it".into()
            }
            X509Error::Sha1Signature { .. } => "have the object signed again with SHA-256 or stronger".into(),
            X509Error::Refused { hint, .. } => hint.clone(),
            X509Error::Signer(e) => return e.hint(),
            X509Error::Internal { .. } => REPORT_BUG.into(),
        })
    }

    /// Shorthand for [`X509Error::Refused`].
    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        X509Error::Refused {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// Shorthand for [`X509Error::Internal`].
    pub fn internal(what: impl Into<String>) -> Self {
        X509Error::Internal { what: what.into() }
    }
}

/// The name of an OID in const-oid's database, for messages.
pub(crate) fn oid_name(oid: &ObjectIdentifier) -> &'static str {
    const_oid::db::DB.by_oid(oid).unwrap_or("unknown")
}

/// Why a signer (`signer::CaSigner`) could not sign: the signer's own error, kept whole so that the caller
/// that knows the signer (the CA layer, for a key on a token) can take its type back.
#[derive(Debug)]
pub struct SignError {
    source: Box<dyn std::error::Error + Send + Sync>,
    hint: Option<String>,
}

impl SignError {
    /// Wraps a signer's error and the fix it suggests.
    pub fn new(
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
        hint: Option<String>,
    ) -> Self {
        SignError {
            source: source.into(),
            hint,
        }
    }

    /// How to fix it, as the signer said.
    pub fn hint(&self) -> Option<String> {
        self.hint.clone()
    }

    /// The signer's own error.
    pub fn into_source(self) -> Box<dyn std::error::Error + Send + Sync> {
        self.source
    }
}

impl From<X509Error> for SignError {
    fn from(e: X509Error) -> Self {
        let hint = e.hint();
        SignError::new(e, hint)
    }
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for SignError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}
