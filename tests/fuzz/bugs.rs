//! Minimal failing inputs found by the properties, kept as ignored tests until fixed.
