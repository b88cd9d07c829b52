//! A small JSON writer: values built in memory, written on one line, with
//! strings escaped as RFC 8259 requires.

use std::fmt::{self, Write};

/// A JSON value. Objects keep their keys in insertion order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Num(u64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Value>),
    /// An object, its keys in order.
    Obj(Vec<(String, Value)>),
}

impl Value {
    /// An empty object.
    pub fn object() -> Self {
        Value::Obj(Vec::new())
    }

    /// Adds `key: value` to an object (does nothing to other values).
    pub fn insert(&mut self, key: &str, value: Value) {
        if let Value::Obj(fields) = self {
            fields.push((key.to_string(), value));
        }
    }

    /// The value of `key` in an object, the first if there are several.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A string value from anything printable.
    pub fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Num(n) => write!(f, "{n}"),
            Value::Str(s) => write_str(f, s),
            Value::Arr(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            Value::Obj(fields) => {
                f.write_char('{')?;
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_str(f, key)?;
                    write!(f, ":{value}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// Writes `s` as a JSON string: `"` and `\` escaped, control characters as
/// `\n`, `\t`, ... or `\u00XX`; everything else, non-ASCII included, as is
/// (the output is UTF-8).
pub fn write_str(out: &mut impl Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            // U+2028/2029 are valid JSON but break JavaScript readers.
            c if u32::from(c) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                write!(out, "\\u{:04x}", u32::from(c))?
            }
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, s).unwrap();
        out
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(quoted("plain"), r#""plain""#);
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(
            quoted("\u{0}\u{1f}\u{7f}\u{8}\u{c}"),
            r#""\u0000\u001f\u007f\b\f""#
        );
        assert_eq!(quoted("é ü \u{2028}"), "\"é ü \\u2028\"");
        assert_eq!(quoted(r"\x0a"), r#""\\x0a""#);
    }

    #[test]
    fn values_nest() {
        let mut v = Value::object();
        v.insert("n", Value::Num(4026531840));
        v.insert("ok", Value::Bool(true));
        v.insert(
            "names",
            Value::Arr(vec![Value::str("blue"), Value::str("x\"y")]),
        );
        let mut inner = Value::object();
        inner.insert("SPT", Value::Num(53));
        v.insert("transport", inner);
        v.insert("empty", Value::Arr(vec![]));
        assert_eq!(
            v.to_string(),
            r#"{"n":4026531840,"ok":true,"names":["blue","x\"y"],"transport":{"SPT":53},"empty":[]}"#
        );
        assert_eq!(v.get("n"), Some(&Value::Num(4026531840)));
        assert_eq!(v.get("none"), None);
    }
}
