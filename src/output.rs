//! Atomic, no-clobber output files.
