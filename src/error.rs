//! Errors as data: every error names its cause and carries a hint for the fix.
