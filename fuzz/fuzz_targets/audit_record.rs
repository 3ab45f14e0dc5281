//! One audit log line, as `AuditLog::read` decodes it.
#![no_main]

use hsmca::internals::audit::{Event, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<Record>(data) else {
        return;
    };
    if let Event::RootCreated { cert } | Event::CsrSigned { cert, .. } = &record.event {
        let _ = cert.der();
    }
    // What the log writes back must decode again.
    let line = serde_json::to_vec(&record).expect("a decoded record encodes");
    serde_json::from_slice::<Record>(&line).expect("an encoded record decodes");
});
