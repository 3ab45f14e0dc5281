//! `#[test_needs(softhsm2, etcd)]`: a `#[test]` that is ignored, with the reason and the fix,
//! where a tool it needs is missing. The integration tests (`tests/it/`) drive real outside
//! tools; on a machine without one of them `cargo test` should say what to install rather than
//! fail on "No such file or directory".
//!
//! The probing is done by the package's build script (`build.rs`), which sets the cfg
//! `hsmca_no_NAME` for each missing gate NAME and declares all of them to `--check-cfg` (so a
//! gate named here and not there is a compile error under `-D warnings`). This macro only adds
//! `#[test]` and, per gate, `#[cfg_attr(hsmca_no_NAME, ignore = "...")]`, because libtest has
//! no way to skip a test at run time and an ignore reason must be a string literal.

use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

/// The gates, and what an ignored test says: why, and what to do.
const GATES: [(&str, &str); 6] = [
    (
        "softhsm2",
        "SoftHSM2 is not installed: run scripts/install-deps.sh (or apt-get install softhsm2)",
    ),
    (
        "etcd",
        "etcd is not installed: run scripts/install-deps.sh (or apt-get install etcd-server etcd-client)",
    ),
    (
        "kubectl",
        "kubectl is not installed: run scripts/install-deps.sh (or apt-get install kubernetes-client)",
    ),
    (
        "tpm2_pkcs11",
        "tpm2-pkcs11 on a software TPM is not installed: run scripts/install-deps.sh (swtpm, \
         swtpm-tools, tpm2-abrmd, dbus, libtpm2-pkcs11-tools)",
    ),
    (
        "opencryptoki",
        "openCryptoki is not installed: run scripts/install-deps.sh (or apt-get install opencryptoki)",
    ),
    (
        "root",
        "needs root with CAP_SYS_ADMIN (it mounts a tmpfs, unshares the network or resets a \
         system-wide token store): run the tests as root",
    ),
];

/// `#[test_needs(GATE, ...)]` on a test function: `#[test]`, ignored where build.rs found a
/// gate missing, with that gate's reason (the first missing one when several are).
#[proc_macro_attribute]
pub fn test_needs(attr: TokenStream, item: TokenStream) -> TokenStream {
    let gates = match gate_names(attr) {
        Ok(g) => g,
        Err(e) => return compile_error(&e),
    };
    let mut out = attribute(ident("test"));
    for (i, (name, reason)) in gates.iter().enumerate() {
        // Ignored for this gate only when the gates before it are present: one reason per test.
        let earlier: Vec<String> = gates[..i]
            .iter()
            .map(|(n, _)| format!("hsmca_no_{n}"))
            .collect();
        let cond = if earlier.is_empty() {
            format!("hsmca_no_{name}")
        } else {
            format!("all(hsmca_no_{name}, not(any({})))", earlier.join(", "))
        };
        let text = format!("cfg_attr({cond}, ignore = {reason:?})");
        match text.parse::<TokenStream>() {
            Ok(body) => out.extend(attribute(body)),
            Err(e) => return compile_error(&format!("test_needs: {e}")),
        }
    }
    out.extend(item);
    out
}

/// The gate names of the attribute's arguments with their reasons, or what is wrong with them.
fn gate_names(attr: TokenStream) -> Result<Vec<(String, &'static str)>, String> {
    let known = || GATES.map(|(n, _)| n).join(", ");
    let mut gates = Vec::new();
    for tt in attr {
        match tt {
            TokenTree::Ident(id) => {
                let name = id.to_string();
                let Some((_, reason)) = GATES.iter().find(|(n, _)| *n == name) else {
                    return Err(format!(
                        "test_needs: unknown gate `{name}` (known: {})",
                        known()
                    ));
                };
                gates.push((name, *reason));
            }
            TokenTree::Punct(p) if p.as_char() == ',' => {}
            other => return Err(format!("test_needs: expected gate names, found `{other}`")),
        }
    }
    if gates.is_empty() {
        return Err(format!(
            "test_needs: name the gates the test needs ({}); a test that needs none is #[test]",
            known()
        ));
    }
    Ok(gates)
}

fn ident(name: &str) -> TokenStream {
    TokenTree::Ident(Ident::new(name, Span::call_site())).into()
}

/// `#[BODY]`.
fn attribute(body: TokenStream) -> TokenStream {
    [
        TokenTree::Punct(Punct::new('#', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Bracket, body)),
    ]
    .into_iter()
    .collect()
}

/// `compile_error!("MESSAGE");`
fn compile_error(message: &str) -> TokenStream {
    format!("compile_error!({message:?});")
        .parse()
        .unwrap_or_default()
}
