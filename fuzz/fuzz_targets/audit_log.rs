//! A whole audit log file (`AuditLog::read`), and the CA directory's ledger derived from it, as
//! every command that opens a CA directory reads them.
#![no_main]

use std::sync::OnceLock;

use hsmca::internals::audit::AuditLog;
use hsmca::internals::ca::{Access, CaDir, Reading};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

fuzz_target!(|data: &[u8]| {
    let path = dir().path().join("audit.jsonl");
    std::fs::write(&path, data).expect("write the log");
    let _ = AuditLog::new(&path).read();
    if let Ok(ca) = CaDir::open(dir().path(), Access::Read, Reading::Whole) {
        let ledger = ca.ledger();
        let _ = ledger.serials();
        let _ = ledger.find("01");
    }
});
