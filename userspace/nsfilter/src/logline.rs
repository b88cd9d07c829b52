//! nsfilter's kernel log lines read back: a packet line (`NETNS=... IN=...`,
//! the kernel `LOG` target's format), a rate limit notice, or another notice
//! (load, unload, a refused parameter); and each as a JSON object.
//!
//! JSON of a packet line: every `KEY=VALUE` (and `KEY:VALUE`: `FRAG:`, IPv6's
//! `ID:`) under its own key, in the order of the line; a flag (`DF`, `SYN`,
//! `TRUNCATED`) as `true`. The fields from `PROTO=` on belong to the
//! transport header (or ICMP message) and go into a nested `"transport"`
//! object, so that the UDP header's `LEN=` and ICMP's `ID=` do not collide
//! with the IP header's; `PROTO` and `MARK` stay at the top. An ICMP error's
//! inner packet `[...]` is `"inner"` in `"transport"`, built the same way.
//! `INCOMPLETE [26 bytes]` is `"INCOMPLETE": 26`. Lengths, ports, TTL and the
//! like are numbers; addresses, `TOS=0x00` and other text are strings, as
//! printed. A key that comes again in the same object (IPv6 with two fragment
//! headers: `FRAG:0 ID:... FRAG:0 ID:...`) is `FRAG_2`, `ID_2`. Lowercase keys are the tool's own: `kind`, `netns`, `names`,
//! `timestamp_us`, `seq`.

use crate::json::Value;

/// One word of a packet line, or the inner packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// `KEY=VALUE` or `KEY:VALUE`.
    Field {
        /// The key, e.g. `SRC`.
        key: String,
        /// `=` or `:`.
        sep: char,
        /// The value as printed, possibly empty (`OUT=`).
        value: String,
    },
    /// A word without a value: `DF`, `SYN`, `TRUNCATED`.
    Flag(String),
    /// `INCOMPLETE [N bytes]`.
    Incomplete(u64),
    /// An ICMP error's packet, `[SRC=... ]`.
    Inner(Vec<Token>),
}

/// One nsfilter line, after `nsfilter: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A packet.
    Packet {
        /// The namespace it entered.
        netns: u64,
        /// The rest of the line, `IN=...` on.
        tokens: Vec<Token>,
    },
    /// `ratelimit: netns N suppressed M lines (limit A, budget B)`.
    RateLimit {
        /// The namespace.
        netns: u64,
        /// How many lines were refused since the last such line.
        suppressed: u64,
        /// Of them, how many by the namespace's own limit and how many by
        /// the host-wide budget; `None` from a module older than the budget.
        reasons: Option<(u64, u64)>,
    },
    /// Any other line of nsfilter's: load, unload, a refused parameter.
    Notice(String),
    /// A packet or rate limit line that does not parse: kept as it is.
    Raw(String),
}

/// What every nsfilter line starts with.
pub const PREFIX: &str = "nsfilter: ";

impl Line {
    /// The namespace the line is about, if any.
    pub fn netns(&self) -> Option<u64> {
        match self {
            Line::Packet { netns, .. } | Line::RateLimit { netns, .. } => Some(*netns),
            Line::Notice(_) | Line::Raw(_) => None,
        }
    }
}

/// Reads a kernel log message; `None` if it is not nsfilter's.
pub fn parse(message: &str) -> Option<Line> {
    let text = message.strip_prefix(PREFIX)?;
    if let Some(rest) = text.strip_prefix("NETNS=") {
        return Some(parse_packet(rest).unwrap_or_else(|| Line::Raw(message.to_string())));
    }
    if let Some(rest) = text.strip_prefix("ratelimit:") {
        return Some(parse_ratelimit(rest).unwrap_or_else(|| Line::Raw(message.to_string())));
    }
    Some(Line::Notice(text.to_string()))
}

fn parse_ratelimit(rest: &str) -> Option<Line> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (netns, n, reasons) = match words.as_slice() {
        ["netns", netns, "suppressed", n, "lines"] => (netns, n, None),
        ["netns", netns, "suppressed", n, "lines", "(limit", limit, "budget", budget] => {
            let limit = limit.strip_suffix(',')?.parse().ok()?;
            let budget = budget.strip_suffix(')')?.parse().ok()?;
            (netns, n, Some((limit, budget)))
        }
        _ => return None,
    };
    Some(Line::RateLimit {
        netns: netns.parse().ok()?,
        suppressed: n.parse().ok()?,
        reasons,
    })
}

fn parse_packet(rest: &str) -> Option<Line> {
    let (inode, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let netns = inode.parse().ok()?;
    let mut words = tail.split(' ').filter(|w| !w.is_empty()).peekable();
    let tokens = tokens(&mut words, false)?;
    if words.next().is_some()
        || !tokens
            .iter()
            .any(|t| matches!(t, Token::Field { key, .. } if key == "IN"))
    {
        return None;
    }
    Some(Line::Packet { netns, tokens })
}

/// Whether `key` looks like a `LOG` key: capitals, digits, `_`.
fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && key.as_bytes()[0].is_ascii_uppercase()
}

/// Reads words into tokens until the end, or, `inner`, the closing `]`.
fn tokens<'a>(
    words: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
    inner: bool,
) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    while let Some(word) = words.next() {
        if inner && word == "]" {
            return Some(out);
        }
        // `[N bytes]` after `INCOMPLETE`.
        if let Some(n) = word.strip_prefix('[').and_then(|n| n.parse::<u64>().ok()) {
            if out.last() == Some(&Token::Flag("INCOMPLETE".into()))
                && words.peek() == Some(&"bytes]")
            {
                words.next();
                out.pop();
                out.push(Token::Incomplete(n));
                continue;
            }
            return None;
        }
        if let Some(first) = word.strip_prefix('[') {
            if inner {
                return None; // One level only.
            }
            let mut nested = Vec::new();
            let closed = push_word(&mut nested, first, true)?;
            if !closed {
                nested.extend(tokens(words, true)?);
            }
            out.push(Token::Inner(nested));
            continue;
        }
        if push_word(&mut out, word, inner)? {
            return Some(out);
        }
    }
    // Reaching the end inside `[...]` is malformed.
    (!inner).then_some(out)
}

/// Adds one word; returns whether it closed the inner packet (`TRUNCATED]`).
fn push_word(out: &mut Vec<Token>, word: &str, inner: bool) -> Option<bool> {
    let (word, closes) = match word.strip_suffix(']') {
        Some(w) if inner => (w, true),
        _ => (word, false),
    };
    if word.is_empty() {
        return Some(closes);
    }
    let eq = word.find('=');
    let colon = word.find(':');
    let split = match (eq, colon) {
        (Some(e), Some(c)) => Some(e.min(c)),
        (e, c) => e.or(c),
    };
    let token = match split {
        Some(at) if is_key(&word[..at]) => Token::Field {
            key: word[..at].to_string(),
            sep: char::from(word.as_bytes()[at]),
            value: word[at + 1..].to_string(),
        },
        None if is_key(word) => Token::Flag(word.to_string()),
        _ => return None,
    };
    out.push(token);
    Some(closes)
}

/// Keys whose values are numbers in JSON (when printed in decimal).
const NUMERIC: [&str; 16] = [
    "LEN",
    "TTL",
    "ID",
    "SPT",
    "DPT",
    "WINDOW",
    "URGP",
    "TYPE",
    "CODE",
    "SEQ",
    "MTU",
    "TC",
    "HOPLIMIT",
    "FLOWLBL",
    "PARAMETER",
    "FRAG",
];

/// A field's JSON value: a number for the numeric keys printed in decimal
/// (IPv6's `ID:` is hex and stays a string), else the text.
fn field_value(key: &str, sep: char, value: &str) -> Value {
    let decimal = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    let numeric = NUMERIC.contains(&key) && !(key == "ID" && sep == ':');
    match value.parse() {
        Ok(n) if decimal && numeric => Value::Num(n),
        _ => Value::str(value),
    }
}

/// Adds `key` to `obj`; a key already there becomes `KEY_2`, `KEY_3`...
/// (an IPv6 packet with several fragment headers has several `FRAG:`/`ID:`).
fn add(obj: &mut Value, key: &str, value: Value) {
    let mut name = key.to_string();
    let mut n = 1;
    while obj.get(&name).is_some() {
        n += 1;
        name = format!("{key}_{n}");
    }
    obj.insert(&name, value);
}

/// Adds the packet fields in `tokens` to `top` (the IP header's, `PROTO`,
/// `MARK`) and, from `PROTO=` on, to a `"transport"` object.
fn packet_fields(top: &mut Value, tokens: &[Token]) {
    let mut transport: Option<Value> = None;
    for t in tokens {
        let (key, value) = match t {
            Token::Field { key, sep, value } => (key.as_str(), field_value(key, *sep, value)),
            Token::Flag(f) => (f.as_str(), Value::Bool(true)),
            Token::Incomplete(n) => ("INCOMPLETE", Value::Num(*n)),
            Token::Inner(inner) => {
                let mut obj = Value::object();
                packet_fields(&mut obj, inner);
                ("inner", obj)
            }
        };
        let at_top = key == "PROTO" || key == "MARK";
        match &mut transport {
            Some(tr) if !at_top => add(tr, key, value),
            _ => add(top, key, value),
        }
        if key == "PROTO" && transport.is_none() {
            transport = Some(Value::object());
        }
    }
    if let Some(tr) = transport {
        top.insert("transport", tr);
    }
}

/// The line as a JSON object, with the namespace's `names` and the record's
/// `timestamp_us` and `seq`.
pub fn to_json(line: &Line, names: &[String], timestamp_us: u64, seq: u64) -> Value {
    let mut v = Value::object();
    let kind = match line {
        Line::Packet { .. } => "packet",
        Line::RateLimit { .. } => "ratelimit",
        Line::Notice(_) => "notice",
        Line::Raw(_) => "raw",
    };
    v.insert("kind", Value::str(kind));
    v.insert("timestamp_us", Value::Num(timestamp_us));
    v.insert("seq", Value::Num(seq));
    if let Some(netns) = line.netns() {
        v.insert("netns", Value::Num(netns));
        v.insert("names", Value::Arr(names.iter().map(Value::str).collect()));
    }
    match line {
        Line::Packet { netns, tokens } => {
            v.insert("NETNS", Value::Num(*netns));
            packet_fields(&mut v, tokens);
        }
        Line::RateLimit {
            suppressed,
            reasons,
            ..
        } => {
            v.insert("suppressed", Value::Num(*suppressed));
            if let Some((limit, budget)) = reasons {
                v.insert("suppressed_limit", Value::Num(*limit));
                v.insert("suppressed_budget", Value::Num(*budget));
            }
        }
        Line::Notice(text) => v.insert("message", Value::str(text.as_str())),
        Line::Raw(text) => v.insert("raw", Value::str(text.as_str())),
    }
    v
}

/// A name as the text output shows it: printable ASCII but `\` and `,` as
/// is, every other byte as `\xNN`, so it cannot split the field.
fn escape_name(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_graphic() && b != b'\\' && b != b',' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The message with ` NAME=a,b` inserted right after the namespace's inode
/// (`NETNS=<inode>`, or `netns <inode>` in a rate limit notice); unchanged
/// without names, or for other lines.
pub fn with_names(message: &str, line: &Line, names: &[String]) -> String {
    let marker = match line {
        Line::Packet { netns, .. } => format!("{PREFIX}NETNS={netns}"),
        Line::RateLimit { netns, .. } => format!("{PREFIX}ratelimit: netns {netns}"),
        _ => return message.to_string(),
    };
    match (names.is_empty(), message.strip_prefix(&marker)) {
        (false, Some(rest)) => {
            let names: Vec<String> = names.iter().map(|n| escape_name(n)).collect();
            format!("{marker} NAME={}{rest}", names.join(","))
        }
        _ => message.to_string(),
    }
}

#[cfg(test)]
#[path = "logline_tests.rs"]
mod tests;
