//! Issuing one certificate: check everything, build the TBS with x509-cert, sign it through a
//! [`CaSigner`], then verify the signature and the encoding before anyone sees the result.

use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::constraints::check_sans_permitted;
use super::error::{Result, X509Error};
use super::name::{check_subject, common_names};
use super::profile::{BoundProfile, CaExtras, IssuerRef, Profile, San};
use super::signer::{BuilderKey, CaSigner};
use super::validity::ValidityPeriod;
use super::verify::verify_certificate;

/// What to certify.
pub struct CertRequest<'a> {
    /// The profile (root, intermediate, leaf).
    pub profile: Profile,
    /// Subject name.
    pub subject: Name,
    /// Subject public key.
    pub public_key: SubjectPublicKeyInfoOwned,
    /// Validity period.
    pub validity: ValidityPeriod,
    /// The issuing CA's certificate; `None` for a self-signed root.
    pub issuer: Option<&'a Certificate>,
    /// The serial number (see [`super::serial::random_serial_where`]).
    pub serial: SerialNumber,
}

/// A certificate whose every check passed and whose TBS is built, waiting for its signature.
pub struct PreparedCert {
    builder: CertificateBuilder<BoundProfile>,
    key: BuilderKey,
    tbs: Vec<u8>,
    issuer_subject_der: Option<Vec<u8>>,
}

/// What the issuer certificate says about itself, as needed to sign under it.
pub struct IssuerFacts {
    /// basicConstraints pathLenConstraint.
    pub path_len: Option<u8>,
    /// subjectKeyIdentifier value.
    pub key_id: Vec<u8>,
    /// Whether it is self-signed (issuer == subject).
    pub self_signed: bool,
}

/// Checks that `cert` can issue certificates and returns what signing under it needs.
pub fn issuer_facts(cert: &Certificate) -> Result<IssuerFacts> {
    let tbs = cert.tbs_certificate();
    let dec = |e: der::Error| {
        X509Error::refused(
            format!("the issuer certificate has a malformed extension: {e}"),
            "check --issuer names the right CA certificate",
        )
    };
    let bc = tbs.get_extension::<BasicConstraints>().map_err(dec)?;
    let Some((_, bc)) = bc.filter(|(_, bc)| bc.ca) else {
        return Err(X509Error::refused(
            "the issuer certificate is not a CA certificate (no basicConstraints cA=TRUE)",
            "pass the CA's certificate as --issuer",
        ));
    };
    if let Some((_, ku)) = tbs.get_extension::<KeyUsage>().map_err(dec)?
        && !ku.0.contains(KeyUsages::KeyCertSign)
    {
        return Err(X509Error::refused(
            "the issuer certificate's keyUsage lacks keyCertSign",
            "pass a CA certificate allowed to sign certificates as --issuer",
        ));
    }
    let Some((_, ski)) = tbs.get_extension::<SubjectKeyIdentifier>().map_err(dec)? else {
        return Err(X509Error::refused(
            "the issuer certificate has no subjectKeyIdentifier, so authorityKeyIdentifier cannot match it",
            "re-issue the CA certificate with a subjectKeyIdentifier (hsmca always adds one)",
        ));
    };
    let self_signed = tbs.issuer().to_der().ok() == tbs.subject().to_der().ok();
    Ok(IssuerFacts {
        path_len: bc.path_len_constraint,
        key_id: ski.0.as_bytes().to_vec(),
        self_signed,
    })
}

/// Runs every check that can run before the token signs, and builds the TBSCertificate.
pub fn prepare(req: &CertRequest<'_>, signer: &dyn CaSigner) -> Result<PreparedCert> {
    prepare_inner(req, &CaExtras::default(), signer.public_key(), signer)
}

/// [`prepare`] for a CA certificate with optional extensions ([`CaExtras`]).
pub fn prepare_with_extras(
    req: &CertRequest<'_>,
    extras: &CaExtras,
    signer: &dyn CaSigner,
) -> Result<PreparedCert> {
    prepare_inner(req, extras, signer.public_key(), signer)
}

/// A dry run: the certificate `req` would give when signed by the key whose public half is
/// `issuing_key`, built with every check of [`prepare`] but signed by `throwaway` (an
/// in-memory key of the same algorithm). Only for reading and linting, never for use.
pub fn preview(
    req: &CertRequest<'_>,
    extras: &CaExtras,
    issuing_key: &SubjectPublicKeyInfoOwned,
    throwaway: &dyn CaSigner,
) -> Result<Certificate> {
    prepare_inner(req, extras, issuing_key, throwaway)?.sign(throwaway)
}

/// The checks and the TBS of [`prepare`]; `issuing_key` is the public key that will sign,
/// `signer` only supplies the signature algorithm of the TBS.
fn prepare_inner(
    req: &CertRequest<'_>,
    extras: &CaExtras,
    issuing_key: &SubjectPublicKeyInfoOwned,
    signer: &dyn CaSigner,
) -> Result<PreparedCert> {
    let issuer_facts = req.issuer.map(issuer_facts).transpose()?;
    match (&req.issuer, &issuer_facts) {
        (None, _) => {
            if !matches!(req.profile, Profile::Root { .. }) {
                return Err(X509Error::refused(
                    "only a root is self-signed",
                    "pass --issuer with the CA certificate",
                ));
            }
            if &req.public_key != issuing_key {
                return Err(X509Error::internal(
                    "the root's public key is not the signing key's",
                ));
            }
        }
        (Some(issuer), Some(facts)) => {
            if issuer.tbs_certificate().subject_public_key_info() != issuing_key {
                return Err(X509Error::refused(
                    "the signing key does not belong to the issuer certificate (their public keys differ)",
                    "pass the key URI of the CA whose certificate is given as --issuer",
                ));
            }
            match &req.profile {
                Profile::Root { .. } => {
                    return Err(X509Error::internal("a root has no issuer"));
                }
                Profile::Intermediate { path_len, .. } => match facts.path_len {
                    Some(0) => {
                        return Err(X509Error::refused(
                            "the issuer's pathLenConstraint is 0: it may not sign another CA",
                            "sign this CA with a CA higher in the chain",
                        ));
                    }
                    Some(max) if path_len.is_none_or(|p| p >= max) => {
                        return Err(X509Error::refused(
                            format!(
                                "the issuer's pathLenConstraint is {max}, so this CA needs --path-len below {max}"
                            ),
                            format!("pass --path-len {}", max - 1),
                        ));
                    }
                    _ => {}
                },
                Profile::Leaf { .. } if facts.self_signed => {
                    return Err(X509Error::refused(
                        "a root does not sign end-entity certificates directly",
                        "sign an intermediate CA with the root, and the leaf with the intermediate",
                    ));
                }
                Profile::Leaf { sans, .. } => check_leaf_names(issuer, &req.subject, sans)?,
            }
            super::weak_rsa::check_certifiable(&req.public_key)?;
            if &req.public_key == issuing_key {
                return Err(X509Error::refused(
                    "the request carries the issuing CA's own public key: a certificate for it would let that key stand for another subject",
                    "refuse this request: whoever made it does not hold a key of their own (a CA's key is never shared)",
                ));
            }
            req.validity
                .check_within(issuer.tbs_certificate().validity())?;
        }
        (Some(_), None) => unreachable!("issuer facts are computed for every issuer"),
    }
    check_subject(&req.subject)?;
    if req.subject.is_empty() && !matches!(req.profile, Profile::Leaf { .. }) {
        return Err(X509Error::refused(
            "a CA certificate needs a subject name",
            "pass --subject, e.g. \"CN=Cluster A CA,O=Example\"",
        ));
    }
    let issuer_ref = match (&req.issuer, &issuer_facts) {
        (Some(issuer), Some(facts)) => IssuerRef::Ca {
            subject: issuer.tbs_certificate().subject(),
            key_id: &facts.key_id,
        },
        _ => IssuerRef::SelfSigned,
    };
    let profile = BoundProfile::new(
        &req.profile,
        req.subject.clone(),
        &req.public_key,
        &issuer_ref,
    )?
    .with_extras(&req.profile, extras)?;
    let issuer_subject_der = req
        .issuer
        .map(|i| i.tbs_certificate().subject().to_der())
        .transpose()
        .map_err(|e| X509Error::refused(format!("issuer subject: {e}"), "check --issuer"))?;
    let mut builder = CertificateBuilder::new(
        profile,
        req.serial.clone(),
        req.validity.to_x509()?,
        req.public_key.clone(),
    )
    .map_err(build_err)?;
    let key = BuilderKey::new(signer);
    let tbs = builder.finalize(&key).map_err(build_err)?;
    Ok(PreparedCert {
        builder,
        key,
        tbs,
        issuer_subject_der,
    })
}

/// A leaf's names against its issuer's name constraints, as verifiers apply them: every SAN;
/// and, when it has no DNS SAN, a CN that looks like a host name (OpenSSL and GnuTLS check
/// such a CN as a DNS name; Go does not, so the stricter rule is the one to meet).
fn check_leaf_names(issuer: &Certificate, subject: &Name, sans: &[San]) -> Result<()> {
    check_sans_permitted(issuer, sans)?;
    if !sans.iter().any(|s| matches!(s, San::Dns(_))) {
        let hosts: Vec<San> = common_names(subject)
            .into_iter()
            .filter(|cn| looks_like_host(cn))
            .map(San::Dns)
            .collect();
        check_sans_permitted(issuer, &hosts)?;
    }
    Ok(())
}

/// Whether a CN reads as a DNS name: dotted labels of letters, digits, '-', '_' (and a
/// leading '*' label), as OpenSSL decides before checking a CN against name constraints.
fn looks_like_host(cn: &str) -> bool {
    let labels: Vec<&str> = cn.split('.').collect();
    labels.len() > 1
        && labels.iter().enumerate().all(|(i, l)| {
            (i == 0 && *l == "*")
                || (!l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        })
}

fn build_err(e: x509_cert::builder::Error) -> X509Error {
    X509Error::refused(
        format!("cannot build the certificate: {e}"),
        "check the subject and the request",
    )
}

impl PreparedCert {
    /// The DER TBSCertificate that will be signed.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs
    }

    /// The TBS, decoded.
    fn tbs(&self) -> Result<x509_cert::TbsCertificate> {
        x509_cert::TbsCertificate::from_der(&self.tbs)
            .map_err(|e| X509Error::internal(format!("the TBS does not decode: {e}")))
    }

    /// The signature algorithm the TBS names (the one the token will sign with).
    pub fn signature_algorithm(&self) -> Result<super::algorithm::SignatureAlgorithm> {
        super::algorithm::SignatureAlgorithm::from_algorithm_identifier(self.tbs()?.signature())
    }

    /// The certificate with a one-byte placeholder signature, for structural lints (which never
    /// verify it).
    pub fn unsigned_copy(&self) -> Result<Certificate> {
        self.copy_with(&[0])
    }

    /// The same TBS signed by `throwaway`, an in-memory key whose signature algorithm must be
    /// the one the TBS names: the certificate a linter reads before the token signs.
    pub fn sign_copy(&self, throwaway: &dyn CaSigner) -> Result<Certificate> {
        let alg = throwaway.signature_algorithm().algorithm_identifier();
        if self.tbs()?.signature() != &alg {
            return Err(X509Error::internal(
                "the throwaway key's signature algorithm differs from the one the TBS names",
            ));
        }
        let cert = self.copy_with(&throwaway.sign(&self.tbs)?)?;
        verify_certificate(&cert, throwaway.public_key())?;
        Ok(cert)
    }

    /// The TBS with the algorithm it names and `signature`, as a certificate.
    fn copy_with(&self, signature: &[u8]) -> Result<Certificate> {
        let alg = self.tbs()?.signature().clone();
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }:
        // x509-cert has no public constructor, so the three encoded parts make the SEQUENCE.
        let enc = |e: der::Error| X509Error::internal(format!("encoding: {e}"));
        let parts = vec![
            der::asn1::Any::from_der(&self.tbs).map_err(enc)?,
            der::asn1::Any::encode_from(&alg).map_err(enc)?,
            der::asn1::Any::encode_from(&BuilderKey::bit_string(signature)?).map_err(enc)?,
        ];
        Certificate::from_der(&parts.to_der().map_err(enc)?).map_err(enc)
    }

    /// Signs the TBS through `signer`, then verifies the signature with the signer's public key,
    /// that the issuer field equals the issuer's subject byte for byte, and that the DER
    /// round-trips. Nothing is returned that failed a check.
    pub fn sign(self, signer: &dyn CaSigner) -> Result<Certificate> {
        let signature = signer.sign(&self.tbs)?;
        self.finish(&signature, signer.public_key())
    }

    /// The second half of [`PreparedCert::sign`], for a signature made elsewhere (a batch signs
    /// on one thread and checks on another): assembles the certificate and runs every check
    /// of `sign` with `issuing_key`, the signer's public key.
    pub fn finish(
        self,
        signature: &[u8],
        issuing_key: &SubjectPublicKeyInfoOwned,
    ) -> Result<Certificate> {
        let bits = BuilderKey::bit_string(signature)?;
        let cert = self.builder.assemble(bits, &self.key).map_err(build_err)?;
        verify_certificate(&cert, issuing_key)?;
        let post = |what: &str| {
            X509Error::internal(format!(
                "the signed certificate failed a check after signing: {what}; nothing was written"
            ))
        };
        let der = cert.to_der().map_err(|_| post("it does not encode"))?;
        let again = Certificate::from_der(&der).map_err(|_| post("it does not decode"))?;
        if again.to_der().ok().as_deref() != Some(der.as_slice()) {
            return Err(post("decode and encode give different bytes"));
        }
        if again.tbs_certificate().to_der().ok().as_deref() != Some(self.tbs.as_slice()) {
            return Err(post("the signed TBS differs from the prepared TBS"));
        }
        if let Some(expected) = &self.issuer_subject_der
            && cert.tbs_certificate().issuer().to_der().ok().as_ref() != Some(expected)
        {
            return Err(post("its issuer differs from the issuer's subject bytes"));
        }
        Ok(cert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::algorithm::KeyAlgorithm;
    use crate::x509::name::parse_name;
    use crate::x509::profile::{IpNet, LeafUsage, PermittedSubtrees};
    use crate::x509::serial::random_serial;
    use crate::x509::soft_key::SoftKey;
    use crate::x509::validity::Lifetime;

    fn now_for(years: u32) -> ValidityPeriod {
        ValidityPeriod::starting(time::OffsetDateTime::now_utc(), Lifetime::Years(years)).unwrap()
    }

    fn request<'a>(
        profile: Profile,
        subject: Name,
        key: &SoftKey,
        issuer: Option<&'a Certificate>,
        years: u32,
    ) -> CertRequest<'a> {
        CertRequest {
            profile,
            subject,
            public_key: key.public_key().clone(),
            validity: now_for(years),
            issuer,
            serial: random_serial().unwrap(),
        }
    }

    /// A root, and under it an intermediate permitted DNS:example.com and IP:10.0.0.0/8.
    fn constrained() -> (SoftKey, Certificate) {
        let root_key = SoftKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let root_req = request(
            Profile::Root { path_len: None },
            parse_name("CN=Policy Root,C=KR").unwrap(),
            &root_key,
            None,
            10,
        );
        let root = prepare(&root_req, &root_key)
            .unwrap()
            .sign(&root_key)
            .unwrap();
        let key = SoftKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let constraints = PermittedSubtrees {
            dns: vec!["example.com".into()],
            ip: vec!["10.0.0.0/8".parse::<IpNet>().unwrap()],
        };
        let req = request(
            Profile::Intermediate {
                path_len: Some(0),
                constraints: Some(constraints),
            },
            parse_name("CN=Constrained CA").unwrap(),
            &key,
            Some(&root),
            5,
        );
        let cert = prepare(&req, &root_key).unwrap().sign(&root_key).unwrap();
        (key, cert)
    }

    fn leaf(issuer: &Certificate, signer: &SoftKey, cn: &str, sans: Vec<San>) -> Result<()> {
        let key = SoftKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let usage = if sans.is_empty() {
            LeafUsage::Client
        } else {
            LeafUsage::Server
        };
        let req = request(
            Profile::Leaf { usage, sans },
            parse_name(&format!("CN={cn}")).unwrap(),
            &key,
            Some(issuer),
            1,
        );
        prepare(&req, signer).map(|_| ())
    }

    #[test]
    fn leaves_outside_the_issuers_constraints_are_refused_in_every_form() {
        let (key, ca) = constrained();
        let dns = |d: &str| San::Dns(d.into());
        let ip = |a: &str| San::Ip(a.parse().unwrap());
        leaf(
            &ca,
            &key,
            "www",
            vec![dns("www.example.com"), ip("10.1.2.3")],
        )
        .unwrap();
        leaf(&ca, &key, "alice", vec![]).unwrap();
        for (cn, sans, names) in [
            ("www", vec![dns("www.evil.com")], "DNS:www.evil.com"),
            (
                "www",
                vec![dns("www.example.com"), ip("11.0.0.1")],
                "IP:11.0.0.1",
            ),
            ("www", vec![ip("2001:db8::1")], "IP:2001:db8::1"),
            // No DNS SAN: a CN that reads as a host name is held to the DNS constraints.
            ("www.evil.com", vec![], "DNS:www.evil.com"),
            ("www.evil.com", vec![ip("10.0.0.1")], "DNS:www.evil.com"),
        ] {
            let e = leaf(&ca, &key, cn, sans.clone()).unwrap_err().to_string();
            assert!(e.contains(names), "{cn} {sans:?}: {e}");
        }
    }

    #[test]
    fn a_request_for_the_issuers_own_key_is_refused() {
        let (key, ca) = constrained();
        let req = request(
            Profile::Leaf {
                usage: LeafUsage::Server,
                sans: vec![San::Dns("www.example.com".into())],
            },
            parse_name("CN=www.example.com").unwrap(),
            &key,
            Some(&ca),
            1,
        );
        let e = prepare(&req, &key).err().unwrap().to_string();
        assert!(e.contains("issuing CA's own public key"), "{e}");
    }
}
