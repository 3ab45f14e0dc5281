//! Notes and warnings for the operator, on standard error, and the progress bar of a long
//! command. One place, so that `-q` quiets notes and a progress bar is not torn by them.

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static QUIET: AtomicBool = AtomicBool::new(false);
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Quiets notes (`-q`); warnings and errors are still printed.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// A note: something the operator may want to know that needs no action.
pub fn note(text: impl Display) {
    if !QUIET.load(Ordering::Relaxed) {
        emit(&format!("note: {text}"));
    }
}

/// A warning: something that worked but should be looked at.
pub fn warning(text: impl Display) {
    emit(&format!("warning: {text}"));
}

/// Runs `f` (which prints) with the progress bar, if any, cleared while it does.
pub fn suspended<T>(f: impl FnOnce() -> T) -> T {
    let bar = BAR.lock().ok().and_then(|b| b.clone());
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

fn emit(line: &str) {
    suspended(|| eprintln!("{line}"));
}

/// A progress bar on standard error for `total` units of `what` (done, remaining, rate), shown
/// only when standard error is a terminal and notes are not quieted; finished when dropped.
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
