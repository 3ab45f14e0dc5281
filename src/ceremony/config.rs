//! The ceremony file (TOML): one config type per section and per step kind, each with its own
//! `validate()` into checked types. Unknown fields are errors naming the line and the field.
//!
//! Steps are parsed one by one from the document's spanned tree, so an error inside step 5 names
//! step 5's line (an internally tagged serde enum would buffer the step and lose the position).

use std::path::{Component, Path, PathBuf};

use const_oid::ObjectIdentifier;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use x509_cert::name::Name;

use crate::error::{Error, Result};
use crate::x509::algorithm::KeyAlgorithm;
use crate::x509::name::parse_name;
use crate::x509::profile::{
    CaExtras, IpNet, PermittedSubtrees, Profile, check_dns_name, check_http_url,
};
use crate::x509::validity::{Lifetime, ValidityPeriod, fmt, parse_time};

/// `[ceremony]`: who and where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeremonySection {
    /// What the ceremony is, as the transcript titles it.
    pub name: String,
    /// The operator who types the PIN and the confirmations.
    pub operator: String,
    /// The witnesses, by name.
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// The CA directory the steps record into (audit log, issued certificates).
    pub ca_dir: PathBuf,
    /// Where the signed transcript is written.
    pub transcript: PathBuf,
}

/// `[token]`: which token, by label (never by slot).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// Token label.
    pub label: String,
    /// Token serial, when several tokens share a label.
    pub serial: Option<String>,
    /// PKCS#11 module; default --module / HSMCA_MODULE / the usual SoftHSM2 paths.
    pub module: Option<PathBuf>,
}

/// `[ca_key]`: the ceremony's CA key, which signs every certificate, CRL and the transcript.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaKeySection {
    /// CKA_LABEL of the key.
    pub label: String,
    /// CKA_ID in hex, where the label alone is ambiguous.
    pub id: Option<String>,
    /// RSA keys: sign with RSASSA-PSS instead of PKCS#1 v1.5 (as `--pss`).
    #[serde(default)]
    pub pss: bool,
    /// RSA keys: SHA-256, -384 or -512 (as `--hash`); EC keys have one each.
    pub hash: Option<u16>,
}

impl CaKeySection {
    /// The signature choice, as the command-line flags give it.
    pub fn choice(&self) -> crate::ca::signer::SignatureChoice {
        crate::ca::signer::SignatureChoice {
            hash: self.hash,
            pss: self.pss,
        }
    }
}

/// The whole file but the steps (these are parsed one by one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    ceremony: CeremonySection,
    token: TokenSection,
    ca_key: CaKeySection,
    #[serde(default)]
    step: Option<serde::de::IgnoredAny>,
}

/// `kind = "generate_key"`: a CA key pair on the token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateKeyConfig {
    /// CKA_LABEL of the new key; must not exist yet.
    pub label: String,
    /// ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519.
    pub algorithm: String,
    /// CKA_ID in hex (default: 16 random bytes).
    pub id: Option<String>,
}

/// `kind = "create_root"`: the self-signed root certificate of the CA key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRootConfig {
    /// Subject, RFC 4514.
    pub subject: String,
    /// Lifetime from the moment of signing (or from `not_before`), e.g. "20y".
    pub validity: Option<String>,
    /// Start of validity (RFC 3339 or YYYY-MM-DD).
    pub not_before: Option<String>,
    /// End of validity, inclusive (RFC 3339 or YYYY-MM-DD = end of that day).
    pub not_after: Option<String>,
    /// pathLenConstraint (not recommended on roots).
    pub path_len: Option<u8>,
    /// keyUsage names; default keyCertSign, cRLSign.
    pub key_usage: Option<Vec<String>>,
    /// certificatePolicies OIDs.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Where the certificate is written (PEM).
    pub out: PathBuf,
}

/// `kind = "csr"`: a certificate request signed by the CA key, for another CA to certify it
/// (a root asking to be cross-signed, an intermediate on this token certified by a root
/// elsewhere).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrConfig {
    /// Subject, RFC 4514.
    pub subject: String,
    /// pathLenConstraint asked for.
    pub path_len: Option<u8>,
    /// Where the request is written (PEM).
    pub out: PathBuf,
}

/// One CSR of a signing step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestConfig {
    /// The CSR (PEM or DER).
    pub csr: PathBuf,
    /// Where its certificate is written (PEM).
    pub out: PathBuf,
    /// Optionally the chain: the certificate, then the CA's.
    pub chain_out: Option<PathBuf>,
}

/// `kind = "sign_intermediate"`: CA certificates from CSRs, one or many, with one profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIntermediateConfig {
    /// The requests.
    pub requests: Vec<RequestConfig>,
    /// Subject instead of the CSR's (a single request only).
    pub subject: Option<String>,
    /// Lifetime, e.g. "5y".
    pub validity: Option<String>,
    /// Start of validity.
    pub not_before: Option<String>,
    /// End of validity, inclusive.
    pub not_after: Option<String>,
    /// pathLenConstraint (0: the CA signs leaves only).
    pub path_len: Option<u8>,
    /// Permitted DNS subtrees (no leading dot).
    #[serde(default)]
    pub permit_dns: Vec<String>,
    /// Permitted IP ranges (CIDR).
    #[serde(default)]
    pub permit_ip: Vec<String>,
    /// cRLDistributionPoints URL (http://).
    pub crl_url: Option<String>,
    /// authorityInfoAccess caIssuers URL (http://).
    pub ca_issuers_url: Option<String>,
    /// certificatePolicies OIDs.
    #[serde(default)]
    pub policies: Vec<String>,
    /// keyUsage names; default keyCertSign, cRLSign.
    pub key_usage: Option<Vec<String>>,
}

/// `kind = "cross_sign"`: an existing CA certificate issued again under this CA (rollover).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossSignConfig {
    /// The CA certificate to cross-sign (PEM or DER): its subject, key and subjectKeyIdentifier
    /// are kept.
    pub certificate: PathBuf,
    /// The certificate that issued it, when it is not self-signed (its signature is checked).
    pub certificate_issuer: Option<PathBuf>,
    /// Where the cross-certificate is written (PEM).
    pub out: PathBuf,
    /// Optionally the chain: the cross-certificate, then this CA's.
    pub chain_out: Option<PathBuf>,
    /// Lifetime, e.g. "5y".
    pub validity: Option<String>,
    /// Start of validity.
    pub not_before: Option<String>,
    /// End of validity, inclusive.
    pub not_after: Option<String>,
    /// pathLenConstraint.
    pub path_len: Option<u8>,
    /// Permitted DNS subtrees (no leading dot).
    #[serde(default)]
    pub permit_dns: Vec<String>,
    /// Permitted IP ranges (CIDR).
    #[serde(default)]
    pub permit_ip: Vec<String>,
    /// cRLDistributionPoints URL (http://).
    pub crl_url: Option<String>,
    /// authorityInfoAccess caIssuers URL (http://).
    pub ca_issuers_url: Option<String>,
    /// certificatePolicies OIDs.
    #[serde(default)]
    pub policies: Vec<String>,
    /// keyUsage names; default keyCertSign, cRLSign.
    pub key_usage: Option<Vec<String>>,
}

/// `kind = "revoke"`: records a revocation; the next CRL lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeConfig {
    /// The certificate to revoke (a file), or
    pub certificate: Option<PathBuf>,
    /// its serial in hex.
    pub serial: Option<String>,
    /// RFC 5280 reason name (keyCompromise, superseded, ...).
    pub reason: String,
    /// Revocation date (default: when the step runs).
    pub date: Option<String>,
}

/// `kind = "crl"`: the CA's CRL from its records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlConfig {
    /// nextUpdate as a duration from thisUpdate, at most 365d.
    pub next_update: String,
    /// The http:// URL the CRL is published at (its issuingDistributionPoint).
    pub url: Option<String>,
    /// Where the CRL is written (PEM).
    pub out: PathBuf,
}

/// How a step states its validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValiditySpec {
    /// A lifetime from `not_before`, or from the moment of signing.
    Lifetime {
        /// Fixed start, if given.
        not_before: Option<OffsetDateTime>,
        /// The lifetime.
        lifetime: Lifetime,
        /// As written ("20y").
        text: String,
    },
    /// Fixed end (and start, or the moment of signing).
    Until {
        /// Fixed start, if given.
        not_before: Option<OffsetDateTime>,
        /// Last second of validity.
        not_after: OffsetDateTime,
    },
}

impl ValiditySpec {
    fn parse(
        validity: Option<&str>,
        not_before: Option<&str>,
        not_after: Option<&str>,
    ) -> Result<Self> {
        let nb = not_before.map(|t| parse_time(t, false)).transpose()?;
        match (validity, not_after) {
            (Some(v), None) => Ok(ValiditySpec::Lifetime {
                not_before: nb,
                lifetime: v.parse()?,
                text: v.to_string(),
            }),
            (None, Some(t)) => Ok(ValiditySpec::Until {
                not_before: nb,
                not_after: parse_time(t, true)?,
            }),
            (Some(_), Some(_)) => Err(Error::invalid(
                "both validity and not_after are given",
                "give a lifetime (validity = \"5y\") or an end date (not_after), not both",
            )),
            (None, None) => Err(Error::invalid(
                "no validity given",
                "add validity = \"5y\" or not_after = \"2031-12-31\"",
            )),
        }
    }

    /// The period if signed at `now`.
    pub fn resolve(&self, now: OffsetDateTime) -> Result<ValidityPeriod> {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Ok(match self {
            ValiditySpec::Lifetime {
                not_before,
                lifetime,
                ..
            } => ValidityPeriod::starting(not_before.unwrap_or(now), *lifetime)?,
            ValiditySpec::Until {
                not_before,
                not_after,
            } => ValidityPeriod::between(not_before.unwrap_or(now), *not_after)?,
        })
    }

    /// As a witness reads it.
    pub fn describe(&self) -> String {
        let from = |nb: &Option<OffsetDateTime>| match nb {
            Some(t) => fmt(*t),
            None => "the moment of signing".to_string(),
        };
        match self {
            ValiditySpec::Lifetime {
                not_before, text, ..
            } => format!("{text} from {} (both ends inclusive)", from(not_before)),
            ValiditySpec::Until {
                not_before,
                not_after,
            } => format!(
                "from {} until {} (inclusive)",
                from(not_before),
                fmt(*not_after)
            ),
        }
    }

    fn normal(&self) -> Value {
        match self {
            ValiditySpec::Lifetime {
                not_before, text, ..
            } => json!({"lifetime": text, "not_before": not_before.map(fmt)}),
            ValiditySpec::Until {
                not_before,
                not_after,
            } => json!({"not_before": not_before.map(fmt), "not_after": fmt(*not_after)}),
        }
    }
}

/// A checked `generate_key` step.
#[derive(Debug, Clone)]
pub struct GenerateKey {
    /// Label of the new key.
    pub label: String,
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// CKA_ID, if fixed.
    pub id: Option<Vec<u8>>,
}

/// The CA profile parts common to roots and intermediates.
#[derive(Debug, Clone)]
pub struct CaProfile {
    /// Validity.
    pub validity: ValiditySpec,
    /// pathLenConstraint.
    pub path_len: Option<u8>,
    /// Name constraints (intermediates).
    pub constraints: Option<PermittedSubtrees>,
    /// Optional extensions.
    pub extras: CaExtras,
}

impl CaProfile {
    /// The certificate profile of a CA issued under this one (sign_intermediate, cross_sign).
    pub fn intermediate(&self) -> Profile {
        Profile::Intermediate {
            path_len: self.path_len,
            constraints: self.constraints.clone(),
        }
    }
}

/// A checked `create_root` step.
#[derive(Debug, Clone)]
pub struct CreateRoot {
    /// Subject as written.
    pub subject_text: String,
    /// Parsed subject.
    pub subject: Name,
    /// Profile.
    pub profile: CaProfile,
    /// Output.
    pub out: PathBuf,
}

/// A checked `csr` step.
#[derive(Debug, Clone)]
pub struct CaRequest {
    /// Parsed subject.
    pub subject: Name,
    /// pathLenConstraint asked for.
    pub path_len: Option<u8>,
    /// Output.
    pub out: PathBuf,
}

/// One checked request.
#[derive(Debug, Clone)]
pub struct Request {
    /// CSR path (relative to the ceremony file's directory, as written).
    pub csr: PathBuf,
    /// Certificate output.
    pub out: PathBuf,
    /// Chain output.
    pub chain_out: Option<PathBuf>,
}

/// A checked `sign_intermediate` step.
#[derive(Debug, Clone)]
pub struct SignIntermediate {
    /// The requests.
    pub requests: Vec<Request>,
    /// Subject override (single request).
    pub subject: Option<(String, Name)>,
    /// Profile.
    pub profile: CaProfile,
}

/// A checked `cross_sign` step.
#[derive(Debug, Clone)]
pub struct CrossSign {
    /// The certificate to cross-sign.
    pub certificate: PathBuf,
    /// Its issuer's certificate, when it is not self-signed.
    pub certificate_issuer: Option<PathBuf>,
    /// Output.
    pub out: PathBuf,
    /// Chain output.
    pub chain_out: Option<PathBuf>,
    /// Profile.
    pub profile: CaProfile,
}

/// What a revoke step names.
#[derive(Debug, Clone)]
pub enum RevokeTarget {
    /// A certificate file.
    Certificate(PathBuf),
    /// A serial, normalised upper-case hex.
    Serial(String),
}

/// A checked `revoke` step.
#[derive(Debug, Clone)]
pub struct Revoke {
    /// Which certificate.
    pub target: RevokeTarget,
    /// RFC 5280 reason name.
    pub reason: String,
    /// Revocation date, if fixed.
    pub date: Option<OffsetDateTime>,
}

/// A checked `crl` step.
#[derive(Debug, Clone)]
pub struct Crl {
    /// nextUpdate lifetime, as written and parsed.
    pub next_update: (String, Lifetime),
    /// Where it is published.
    pub url: Option<String>,
    /// Output.
    pub out: PathBuf,
}

/// A checked step.
#[derive(Debug, Clone)]
pub enum Step {
    /// Generate a key on the token.
    GenerateKey(GenerateKey),
    /// Create the self-signed root.
    CreateRoot(CreateRoot),
    /// Sign CA certificates from CSRs.
    SignIntermediate(SignIntermediate),
    /// Cross-sign an existing CA certificate.
    CrossSign(CrossSign),
    /// Revoke a certificate.
    Revoke(Revoke),
    /// Issue the CRL.
    Crl(Crl),
    /// Make a certificate request for the CA key.
    Csr(CaRequest),
}

impl Step {
    /// The kind as the file names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::GenerateKey(_) => "generate_key",
            Step::CreateRoot(_) => "create_root",
            Step::SignIntermediate(_) => "sign_intermediate",
            Step::CrossSign(_) => "cross_sign",
            Step::Revoke(_) => "revoke",
            Step::Crl(_) => "crl",
            Step::Csr(_) => "csr",
        }
    }
}

/// A step with where it is in the file.
#[derive(Debug, Clone)]
pub struct LocatedStep {
    /// 1-based.
    pub number: usize,
    /// Line of its `[[step]]` header.
    pub line: usize,
    /// The step.
    pub step: Step,
}

/// A parsed and checked ceremony file.
#[derive(Debug, Clone)]
pub struct CeremonyFile {
    /// The file.
    pub path: PathBuf,
    /// Its directory: relative paths in the file are relative to it.
    pub base: PathBuf,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
    /// `[ceremony]`.
    pub ceremony: CeremonySection,
    /// `[token]`.
    pub token: TokenSection,
    /// `[ca_key]`.
    pub ca_key: CaKeySection,
    /// CKA_ID of the CA key, decoded.
    pub ca_key_id: Option<Vec<u8>>,
    /// The steps in order.
    pub steps: Vec<LocatedStep>,
}

impl CeremonyFile {
    /// Reads, parses and checks a ceremony file.
    pub fn load(path: &Path) -> Result<CeremonyFile> {
        let bytes = crate::error::read_file(path)?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| {
            Error::invalid(
                format!("{} is not UTF-8 text", path.display()),
                "save the ceremony file as UTF-8",
            )
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut file = parse(path, &text)?;
        file.base = base;
        file.sha256 = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
        Ok(file)
    }

    /// A path of the file, resolved against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }
}

/// Where in the text a byte offset is (1-based line).
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error, context: &str) -> Error {
    let line = e
        .span()
        .map(|s| format!(" line {}", line_of(text, s.start)))
        .unwrap_or_default();
    let field = e
        .span()
        .and_then(|s| text.get(s))
        .filter(|t| !t.contains('\n') && t.len() < 80)
        .map(|t| format!(" at `{}`", t.trim()))
        .unwrap_or_default();
    Error::invalid(
        format!(
            "{}{line}{context}: {}{field}",
            path.display(),
            e.message().trim_end()
        ),
        "fix that line of the ceremony file; the fields of each step kind are in README.md (Ceremonies)",
    )
}

/// Parses the text of a ceremony file (paths unresolved).
pub fn parse(path: &Path, text: &str) -> Result<CeremonyFile> {
    let header: Header = toml::from_str(text).map_err(|e| toml_error(path, text, &e, ""))?;
    let _ = header.step;
    let doc = DeTable::parse(text).map_err(|e| toml_error(path, text, &e, ""))?;
    let steps_value = doc.get_ref().get("step").ok_or_else(|| {
        Error::invalid(
            format!("{} has no steps", path.display()),
            "add [[step]] tables, each with a kind such as kind = \"create_root\"",
        )
    })?;
    let DeValue::Array(array) = steps_value.get_ref() else {
        return Err(Error::invalid(
            format!(
                "{} line {}: `step` must be an array of tables",
                path.display(),
                line_of(text, steps_value.span().start)
            ),
            "write each step as a [[step]] table",
        ));
    };
    let mut steps = Vec::new();
    for (i, item) in array.iter().enumerate() {
        let number = i + 1;
        let line = line_of(text, item.span().start);
        let DeValue::Table(table) = item.get_ref() else {
            return Err(Error::invalid(
                format!(
                    "{} line {line}: step {number} is not a table",
                    path.display()
                ),
                "write each step as a [[step]] table",
            ));
        };
        let Some(kind) = table.get("kind") else {
            return Err(Error::invalid(
                format!(
                    "{} line {line}: step {number} has no `kind`",
                    path.display()
                ),
                "add kind = one of generate_key, create_root, csr, sign_intermediate, cross_sign, revoke, crl",
            ));
        };
        let Some(kind_name) = kind.get_ref().as_str().map(str::to_string) else {
            return Err(Error::invalid(
                format!(
                    "{} line {}: step {number}: `kind` must be a string",
                    path.display(),
                    line_of(text, kind.span().start)
                ),
                "add kind = one of generate_key, create_root, csr, sign_intermediate, cross_sign, revoke, crl",
            ));
        };
        let mut rest = table.clone();
        rest.remove("kind");
        let value = toml::Spanned::new(item.span(), DeValue::Table(rest));
        let context = format!(" (step {number}, {kind_name})");
        let de = || ValueDeserializer::from(value.clone());
        let err = |e: toml::de::Error| toml_error(path, text, &e, &context);
        let invalid = |e: Error| {
            let (cause, hint) = e.cause_and_hint();
            Error::invalid(
                format!("{} line {line}{context}: {cause}", path.display()),
                hint.unwrap_or_else(|| "fix the step".into()),
            )
        };
        let step = match kind_name.as_str() {
            "generate_key" => GenerateKeyConfig::deserialize(de())
                .map_err(err)?
                .validate()
                .map(Step::GenerateKey),
            "create_root" => CreateRootConfig::deserialize(de())
                .map_err(err)?
                .validate()
                .map(Step::CreateRoot),
            "sign_intermediate" => SignIntermediateConfig::deserialize(de())
                .map_err(err)?
                .validate()
                .map(Step::SignIntermediate),
            "cross_sign" => CrossSignConfig::deserialize(de())
                .map_err(err)?
                .validate()
                .map(Step::CrossSign),
            "revoke" => RevokeConfig::deserialize(de())
                .map_err(err)?
                .validate()
                .map(Step::Revoke),
            "crl" => CrlConfig::deserialize(de())
                .map_err(err)?
                .validate()
                .map(Step::Crl),
            "csr" => CsrConfig::deserialize(de())
                .map_err(err)?
                .validate()
                .map(Step::Csr),
            other => {
                return Err(Error::invalid(
                    format!(
                        "{} line {}: step {number} has unknown kind \"{other}\"",
                        path.display(),
                        line_of(text, kind.span().start)
                    ),
                    "use one of generate_key, create_root, csr, sign_intermediate, cross_sign, revoke, crl",
                ));
            }
        }
        .map_err(invalid)?;
        steps.push(LocatedStep { number, line, step });
    }
    let ca_key_id = header
        .ca_key
        .id
        .as_deref()
        .map(|h| parse_hex_id(h, "[ca_key] id"))
        .transpose()?;
    let file = CeremonyFile {
        path: path.to_path_buf(),
        base: PathBuf::from("."),
        sha256: [0; 32],
        ceremony: header.ceremony,
        token: header.token,
        ca_key: header.ca_key,
        ca_key_id,
        steps,
    };
    file.validate()?;
    Ok(file)
}

fn parse_hex_id(h: &str, what: &str) -> Result<Vec<u8>> {
    hex::decode(h)
        .ok()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            Error::invalid(
                format!("{what} \"{h}\" is not hex"),
                "write the CKA_ID as hex, e.g. 01a2",
            )
        })
}

impl CeremonyFile {
    /// Checks across sections and steps: names present, every output path distinct.
    fn validate(&self) -> Result<()> {
        let need = |v: &str, what: &str| {
            if v.trim().is_empty() {
                Err(Error::invalid(
                    format!("{what} is empty"),
                    format!("fill in {what} in the ceremony file"),
                ))
            } else {
                Ok(())
            }
        };
        need(&self.ceremony.name, "[ceremony] name")?;
        need(&self.ceremony.operator, "[ceremony] operator")?;
        need(&self.token.label, "[token] label")?;
        need(&self.ca_key.label, "[ca_key] label")?;
        for w in &self.ceremony.witnesses {
            need(w, "a [ceremony] witnesses entry")?;
        }
        for t in [&self.ceremony.name, &self.ceremony.operator]
            .into_iter()
            .chain(&self.ceremony.witnesses)
        {
            if t.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "names in [ceremony] must be one line of text",
                    "remove newlines and control characters",
                ));
            }
        }
        let ca_dir = normalise(&self.ceremony.ca_dir);
        let outputs_all = std::iter::once((self.ceremony.transcript.clone(), 0)).chain(
            self.steps.iter().flat_map(|s| {
                step_outputs(&s.step)
                    .into_iter()
                    .map(move |o| (o, s.number))
            }),
        );
        for (out, step) in outputs_all {
            if normalise(&out).starts_with(&ca_dir) {
                let what = if step == 0 {
                    "the transcript".to_string()
                } else {
                    format!("step {step}")
                };
                return Err(Error::invalid(
                    format!(
                        "{what} writes {} inside the CA directory {}",
                        out.display(),
                        self.ceremony.ca_dir.display()
                    ),
                    "write outputs outside the CA directory; it keeps its own copies",
                ));
            }
        }
        let mut outputs: Vec<(PathBuf, usize)> = vec![(normalise(&self.ceremony.transcript), 0)];
        let mut roots = 0;
        for s in &self.steps {
            for out in step_outputs(&s.step) {
                let n = normalise(&out);
                if let Some((_, other)) = outputs.iter().find(|(p, _)| *p == n) {
                    let first = if *other == 0 {
                        "the transcript".to_string()
                    } else {
                        format!("step {other}")
                    };
                    return Err(Error::invalid(
                        format!(
                            "step {} writes {}, which {first} also writes",
                            s.number,
                            out.display()
                        ),
                        "give every output its own path",
                    ));
                }
                outputs.push((n, s.number));
            }
            if matches!(s.step, Step::CreateRoot(_)) {
                roots += 1;
            }
            if let Step::GenerateKey(g) = &s.step
                && g.label == self.ca_key.label
                && let (Some(a), Some(b)) = (&g.id, &self.ca_key_id)
                && a != b
            {
                return Err(Error::invalid(
                    format!(
                        "step {} generates the CA key with an id other than [ca_key] id",
                        s.number
                    ),
                    "give the same id in both places, or leave one out",
                ));
            }
        }
        if roots > 1 {
            return Err(Error::invalid(
                "more than one create_root step",
                "a CA directory has one CA certificate: one root per ceremony",
            ));
        }
        Ok(())
    }
}

/// Every file a step writes (paths as written).
pub fn step_outputs(step: &Step) -> Vec<PathBuf> {
    match step {
        Step::GenerateKey(_) | Step::Revoke(_) => vec![],
        Step::CreateRoot(r) => vec![r.out.clone()],
        Step::SignIntermediate(s) => s
            .requests
            .iter()
            .flat_map(|r| std::iter::once(r.out.clone()).chain(r.chain_out.clone()))
            .collect(),
        Step::CrossSign(x) => std::iter::once(x.out.clone())
            .chain(x.chain_out.clone())
            .collect(),
        Step::Crl(c) => vec![c.out.clone()],
        Step::Csr(r) => vec![r.out.clone()],
    }
}

/// A path without `.` components or repeated separators, for comparing and digesting.
pub fn normalise(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn key_usage_extra(list: &Option<Vec<String>>) -> Result<bool> {
    let Some(list) = list else {
        return Ok(false);
    };
    let mut ds = false;
    let (mut cs, mut crl) = (false, false);
    for k in list {
        match k.as_str() {
            "keyCertSign" => cs = true,
            "cRLSign" => crl = true,
            "digitalSignature" => ds = true,
            other => {
                return Err(Error::invalid(
                    format!("key_usage \"{other}\" is not offered for CA certificates"),
                    "a CA certificate has keyCertSign and cRLSign, optionally digitalSignature",
                ));
            }
        }
    }
    if !(cs && crl) {
        return Err(Error::invalid(
            "key_usage must include keyCertSign and cRLSign",
            "write key_usage = [\"keyCertSign\", \"cRLSign\"] (plus \"digitalSignature\" if wanted)",
        ));
    }
    Ok(ds)
}

fn policies(list: &[String]) -> Result<Vec<ObjectIdentifier>> {
    list.iter()
        .map(|p| {
            ObjectIdentifier::new(p).map_err(|_| {
                Error::invalid(
                    format!("policy \"{p}\" is not an OID"),
                    "write policy OIDs in dotted form, e.g. 2.23.140.1.2.1",
                )
            })
        })
        .collect()
}

impl GenerateKeyConfig {
    /// Checks the step.
    pub fn validate(self) -> Result<GenerateKey> {
        if self.label.trim().is_empty() {
            return Err(Error::invalid(
                "label is empty",
                "name the key, e.g. root-2026",
            ));
        }
        Ok(GenerateKey {
            algorithm: self.algorithm.parse()?,
            id: self
                .id
                .as_deref()
                .map(|h| parse_hex_id(h, "id"))
                .transpose()?,
            label: self.label,
        })
    }
}

impl CreateRootConfig {
    /// Checks the step.
    pub fn validate(self) -> Result<CreateRoot> {
        let subject = parse_name(&self.subject)?;
        if subject.is_empty() {
            return Err(Error::invalid(
                "the root needs a subject",
                "write subject = \"CN=Example Root CA 2026,O=Example,C=KR\"",
            ));
        }
        Ok(CreateRoot {
            subject,
            subject_text: self.subject,
            profile: CaProfile {
                validity: ValiditySpec::parse(
                    self.validity.as_deref(),
                    self.not_before.as_deref(),
                    self.not_after.as_deref(),
                )?,
                path_len: self.path_len,
                constraints: None,
                extras: CaExtras {
                    crl_url: None,
                    ca_issuers_url: None,
                    policies: policies(&self.policies)?,
                    digital_signature: key_usage_extra(&self.key_usage)?,
                    subject_key_id: None,
                },
            },
            out: self.out,
        })
    }
}

/// The profile fields that CA certificates issued under this CA share (sign_intermediate,
/// cross_sign), moved out of their config for one validation.
struct SubordinateFields {
    validity: Option<String>,
    not_before: Option<String>,
    not_after: Option<String>,
    path_len: Option<u8>,
    permit_dns: Vec<String>,
    permit_ip: Vec<String>,
    crl_url: Option<String>,
    ca_issuers_url: Option<String>,
    policies: Vec<String>,
    key_usage: Option<Vec<String>>,
}

impl SubordinateFields {
    fn validate(self) -> Result<CaProfile> {
        let dns = self
            .permit_dns
            .iter()
            .map(|d| check_dns_name(d, false))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let ip = self
            .permit_ip
            .iter()
            .map(|n| n.parse::<IpNet>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let constraints =
            (!dns.is_empty() || !ip.is_empty()).then_some(PermittedSubtrees { dns, ip });
        for url in self.crl_url.iter().chain(&self.ca_issuers_url) {
            check_http_url(url)?;
        }
        Ok(CaProfile {
            validity: ValiditySpec::parse(
                self.validity.as_deref(),
                self.not_before.as_deref(),
                self.not_after.as_deref(),
            )?,
            path_len: self.path_len,
            constraints,
            extras: CaExtras {
                crl_url: self.crl_url,
                ca_issuers_url: self.ca_issuers_url,
                policies: policies(&self.policies)?,
                digital_signature: key_usage_extra(&self.key_usage)?,
                subject_key_id: None,
            },
        })
    }
}

impl SignIntermediateConfig {
    /// Checks the step.
    pub fn validate(self) -> Result<SignIntermediate> {
        if self.requests.is_empty() {
            return Err(Error::invalid(
                "requests is empty",
                "list the CSRs: requests = [{ csr = \"a.csr\", out = \"a.crt\" }]",
            ));
        }
        let subject = match &self.subject {
            Some(_) if self.requests.len() > 1 => {
                return Err(Error::invalid(
                    "subject applies to a single request",
                    "leave subject out (each CSR's subject is used) or make one step per request",
                ));
            }
            Some(s) => Some((s.clone(), parse_name(s)?)),
            None => None,
        };
        let profile = SubordinateFields {
            validity: self.validity,
            not_before: self.not_before,
            not_after: self.not_after,
            path_len: self.path_len,
            permit_dns: self.permit_dns,
            permit_ip: self.permit_ip,
            crl_url: self.crl_url,
            ca_issuers_url: self.ca_issuers_url,
            policies: self.policies,
            key_usage: self.key_usage,
        }
        .validate()?;
        Ok(SignIntermediate {
            requests: self
                .requests
                .into_iter()
                .map(|r| Request {
                    csr: r.csr,
                    out: r.out,
                    chain_out: r.chain_out,
                })
                .collect(),
            subject,
            profile,
        })
    }
}

impl CrossSignConfig {
    /// Checks the step (the certificate itself is checked by the plan, which reads it).
    pub fn validate(self) -> Result<CrossSign> {
        let profile = SubordinateFields {
            validity: self.validity,
            not_before: self.not_before,
            not_after: self.not_after,
            path_len: self.path_len,
            permit_dns: self.permit_dns,
            permit_ip: self.permit_ip,
            crl_url: self.crl_url,
            ca_issuers_url: self.ca_issuers_url,
            policies: self.policies,
            key_usage: self.key_usage,
        }
        .validate()?;
        Ok(CrossSign {
            certificate: self.certificate,
            certificate_issuer: self.certificate_issuer,
            out: self.out,
            chain_out: self.chain_out,
            profile,
        })
    }
}

impl RevokeConfig {
    /// Checks the step.
    pub fn validate(self) -> Result<Revoke> {
        crate::ca::revocation_reason(&self.reason)?;
        let target = match (self.certificate, self.serial) {
            (Some(c), None) => RevokeTarget::Certificate(c),
            (None, Some(s)) => {
                let n = crate::ca::store::normalize_serial(&s);
                if n.is_empty() || !n.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(Error::invalid(
                        format!("serial \"{s}\" is not hex"),
                        "write the serial in hex, as 'hsmca list' shows it",
                    ));
                }
                RevokeTarget::Serial(n)
            }
            _ => {
                return Err(Error::invalid(
                    "name the certificate to revoke by certificate or by serial (one of them)",
                    "write certificate = \"out/cluster-a.crt\" or serial = \"1A2B...\"",
                ));
            }
        };
        Ok(Revoke {
            target,
            reason: self.reason,
            date: self.date.map(|d| parse_time(&d, false)).transpose()?,
        })
    }
}

impl CrlConfig {
    /// Checks the step.
    pub fn validate(self) -> Result<Crl> {
        let lifetime: Lifetime = self.next_update.parse()?;
        if let Some(url) = &self.url {
            crate::x509::profile::check_http_url(url)?;
        }
        Ok(Crl {
            url: self.url,
            next_update: (self.next_update, lifetime),
            out: self.out,
        })
    }
}

impl CsrConfig {
    /// Checks the step.
    pub fn validate(self) -> Result<CaRequest> {
        let subject = parse_name(&self.subject)?;
        if subject.is_empty() {
            return Err(Error::invalid(
                "the request needs a subject",
                "write subject = \"CN=Example Root CA 2026,O=Example,C=KR\"",
            ));
        }
        Ok(CaRequest {
            subject,
            path_len: self.path_len,
            out: self.out,
        })
    }
}

fn path_text(p: &Path) -> String {
    normalise(p).display().to_string()
}

/// The normalised form of a step (without input hashes, which the plan adds).
pub fn normal_step(step: &Step) -> Value {
    let profile = |p: &CaProfile| {
        json!({
            "validity": p.validity.normal(),
            "path_len": p.path_len,
            "permit_dns": p.constraints.as_ref().map(|c| c.dns.clone()).unwrap_or_default(),
            "permit_ip": p.constraints.as_ref().map(|c| c.ip.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default(),
            "crl_url": p.extras.crl_url,
            "ca_issuers_url": p.extras.ca_issuers_url,
            "policies": p.extras.policies.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "digital_signature": p.extras.digital_signature,
        })
    };
    match step {
        Step::GenerateKey(g) => json!({
            "kind": "generate_key", "label": g.label, "algorithm": g.algorithm.name(),
            "id": g.id.as_ref().map(hex::encode),
        }),
        Step::CreateRoot(r) => json!({
            "kind": "create_root", "subject": r.subject.to_string(),
            "profile": profile(&r.profile), "out": path_text(&r.out),
        }),
        Step::SignIntermediate(s) => json!({
            "kind": "sign_intermediate",
            "subject": s.subject.as_ref().map(|(_, n)| n.to_string()),
            "profile": profile(&s.profile),
            "requests": s.requests.iter().map(|r| json!({
                "csr": path_text(&r.csr), "out": path_text(&r.out),
                "chain_out": r.chain_out.as_deref().map(path_text),
            })).collect::<Vec<_>>(),
        }),
        Step::CrossSign(x) => json!({
            "kind": "cross_sign",
            "certificate": path_text(&x.certificate),
            "certificate_issuer": x.certificate_issuer.as_deref().map(path_text),
            "profile": profile(&x.profile),
            "out": path_text(&x.out),
            "chain_out": x.chain_out.as_deref().map(path_text),
        }),
        Step::Revoke(r) => json!({
            "kind": "revoke",
            "certificate": match &r.target { RevokeTarget::Certificate(p) => Some(path_text(p)), RevokeTarget::Serial(_) => None },
            "serial": match &r.target { RevokeTarget::Serial(s) => Some(s.clone()), RevokeTarget::Certificate(_) => None },
            "reason": r.reason, "date": r.date.map(fmt),
        }),
        Step::Crl(c) => json!({
            "kind": "crl", "next_update": c.next_update.0, "url": c.url, "out": path_text(&c.out),
        }),
        Step::Csr(r) => json!({
            "kind": "csr", "subject": r.subject.to_string(), "path_len": r.path_len,
            "out": path_text(&r.out),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[ceremony]
name = "t"
operator = "op"
witnesses = ["w1"]
ca_dir = "ca"
transcript = "t.txt"

[token]
label = "T"

[ca_key]
label = "root"

[[step]]
kind = "generate_key"
label = "root"
algorithm = "ecdsa-p384"

[[step]]
kind = "create_root"
subject = "CN=R,O=E,C=KR"
validity = "20y"
out = "root.crt"
"#;

    #[test]
    fn parses_a_good_file() {
        let f = parse(Path::new("c.toml"), GOOD).unwrap();
        assert_eq!(f.steps.len(), 2);
        assert_eq!(f.steps[1].line, 20);
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let bad = GOOD.replace("validity = \"20y\"", "validity = \"20y\"\nvalidty = \"5y\"");
        let e = parse(Path::new("c.toml"), &bad).unwrap_err().to_string();
        assert!(e.contains("line 24"), "{e}");
        assert!(e.contains("validty"), "{e}");
        let bad = GOOD.replace("[token]\n", "[token]\nslot = 1\n");
        let e = parse(Path::new("c.toml"), &bad).unwrap_err().to_string();
        assert!(e.contains("line 10") && e.contains("slot"), "{e}");
    }

    #[test]
    fn refuses_bad_values_and_duplicate_outputs() {
        let bad = GOOD.replace("\"20y\"", "\"20x\"");
        let e = parse(Path::new("c.toml"), &bad).unwrap_err().to_string();
        assert!(e.contains("line 20") && e.contains("20x"), "{e}");
        let bad = GOOD.replace("out = \"root.crt\"", "out = \"./t.txt\"");
        let e = parse(Path::new("c.toml"), &bad).unwrap_err().to_string();
        assert!(e.contains("transcript"), "{e}");
    }
}
