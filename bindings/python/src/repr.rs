//! Python-style `repr` pieces for the classes' `__repr__`: quoted strings, `None`, `True`.

/// A string as Python writes it in a repr: single-quoted, backslashes and quotes escaped.
pub(crate) fn q(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// An optional string, or `None`.
pub(crate) fn q_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "None".to_owned(), q)
}

/// A bool, as `True` / `False`.
pub(crate) fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}
