//! What the operator sees on standard error besides errors: the library's notes and warnings
//! (`-q` quiets notes) and the progress bar of a long command, which they must not tear.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::notice::Notice;

static QUIET: AtomicBool = AtomicBool::new(false);
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Prints the library's notices from now on; `quiet` (`-q`) drops notes and progress bars.
pub fn install(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    crate::notice::set_sink(|notice| match notice {
        Notice::Note(text) => note(text),
        Notice::Warning(text) => warning(text),
    });
}

/// Prints a note unless quiet.
pub fn note(text: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        suspended(|| eprintln!("note: {text}"));
    }
}

/// Prints a warning.
pub fn warning(text: &str) {
    suspended(|| eprintln!("warning: {text}"));
}

/// Runs `f` (which prints) with the progress bar, if any, cleared while it does.
pub fn suspended<T>(f: impl FnOnce() -> T) -> T {
    let bar = BAR.lock().ok().and_then(|b| b.clone());
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// A progress bar on standard error for `total` units of `what` (done, remaining, rate), shown
/// only when standard error is a terminal and the command is not quiet; cleared when dropped.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// Starts one; a hidden one when there is no terminal to draw on or `total` is 1.
    pub fn start(total: u64, what: &str) -> Progress {
        if total < 2 || QUIET.load(Ordering::Relaxed) || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let style =
            ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut slot) = BAR.lock() {
            *slot = Some(bar.clone());
        }
        Progress(Some(bar))
    }

    /// `done` units done in all.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    /// One more unit done.
    pub fn inc(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
            if let Ok(mut slot) = BAR.lock() {
                *slot = None;
            }
        }
    }
}
