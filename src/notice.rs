//! What the library tells the operator besides its results and errors: notes and warnings,
//! handed as they happen to the sink the front end installed (the CLI prints them on stderr,
//! `-q` quiets notes). With no sink installed (tests, fuzz targets) they are dropped.

use std::fmt::Display;
use std::sync::OnceLock;

/// A message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Something worth knowing that needs no action.
    Note(String),
    /// Something that worked but should be looked at.
    Warning(String),
}

type Sink = Box<dyn Fn(&Notice) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the sink, once per process; a second call is ignored.
pub fn set_sink(sink: impl Fn(&Notice) + Send + Sync + 'static) {
    let _ = SINK.set(Box::new(sink));
}

/// Tells the operator a note.
pub(crate) fn note(text: impl Display) {
    emit(Notice::Note(text.to_string()));
}

/// Tells the operator a warning.
pub(crate) fn warning(text: impl Display) {
    emit(Notice::Warning(text.to_string()));
}

fn emit(notice: Notice) {
    if let Some(sink) = SINK.get() {
        sink(&notice);
    }
}
