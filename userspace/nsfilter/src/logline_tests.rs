//! Tests of reading nsfilter's log lines: real lines of each kind, every
//! line of the `LOG` fixture captured from the kernel, and their JSON.

use super::*;

/// The words a line's tokens stand for, brackets left out (for tests).
fn words(tokens: &[Token]) -> Vec<String> {
    let mut out = Vec::new();
    for t in tokens {
        match t {
            Token::Field { key, sep, value } => out.push(format!("{key}{sep}{value}")),
            Token::Flag(f) => out.push(f.clone()),
            Token::Incomplete(n) => {
                out.push("INCOMPLETE".into());
                out.push(n.to_string());
                out.push("bytes".into());
            }
            Token::Inner(inner) => out.extend(words(inner)),
        }
    }
    out
}

const UDP: &str = "nsfilter: NETNS=4026532124 IN=vnet1 OUT= MAC=7e:12:a1:32:43:50:26:23:56:85:2f:3b:08:00 SRC=192.168.0.2 DST=192.168.0.3 LEN=36 TOS=0x00 PREC=0x00 TTL=64 ID=61021 DF PROTO=UDP SPT=40000 DPT=5353 LEN=16 ";
const TCP: &str = "nsfilter: NETNS=4026531840 IN=eth0 OUT= MAC=06:fb:ec:fd:bf:d1:2e:b6:26:e8:38:e9:08:00 SRC=203.0.113.2 DST=203.0.113.1 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=0 DF PROTO=TCP SPT=80 DPT=51106 WINDOW=0 RES=0x00 ACK RST URGP=0 ";
const ECHO: &str = "nsfilter: NETNS=4026532119 IN=vnet1 OUT= MAC=7e:12:a1:32:43:50:26:23:56:85:2f:3b:08:00 SRC=192.168.0.2 DST=192.168.0.3 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=55332 DF PROTO=ICMP TYPE=8 CODE=0 ID=56 SEQ=0 ";
const ICMP_ERROR: &str = "nsfilter: NETNS=4026532124 IN=lf1v OUT= MAC=02:00:00:00:f0:02:02:00:00:00:f0:01:08:00 SRC=10.9.0.1 DST=10.9.0.2 LEN=57 TOS=0x02 PREC=0x00 TTL=179 ID=11482 PROTO=ICMP TYPE=3 CODE=15 [SRC=10.9.0.1 DST=10.9.0.2 LEN=29 TOS=0x06 PREC=0x00 TTL=202 ID=35031 PROTO=UDP SPT=20417 DPT=41693 LEN=27344 ] ";
const IPV6: &str = "nsfilter: NETNS=4026532124 IN=lf1v OUT= MAC=02:00:00:00:f0:02:02:00:00:00:f0:01:86:dd SRC=fd09:0000:0000:0000:0000:0000:0000:0001 DST=fd09:0000:0000:0000:0000:0000:0000:0002 LEN=51 TC=142 HOPLIMIT=130 FLOWLBL=517775 PROTO=UDP SPT=35822 DPT=841 LEN=44290 ";
const IPV6_FRAGS: &str = "nsfilter: NETNS=7 IN=lf1v OUT= MAC= SRC=fd09:0000:0000:0000:0000:0000:0000:0001 DST=fd09:0000:0000:0000:0000:0000:0000:0002 LEN=106 TC=254 HOPLIMIT=197 FLOWLBL=541634 FRAG:0 ID:32f33f26 FRAG:0 ID:64c215ab PROTO=59 ";
const RATELIMIT: &str =
    "nsfilter: ratelimit: netns 4026532115 suppressed 2977 lines (limit 2900, budget 77)";
/// The same line from a module older than the host-wide budget.
const RATELIMIT_OLD: &str = "nsfilter: ratelimit: netns 4026532115 suppressed 2977 lines";

fn packet(message: &str) -> Vec<Token> {
    match parse(message) {
        Some(Line::Packet { tokens, .. }) => tokens,
        other => panic!("not a packet: {other:?} <- {message}"),
    }
}

fn json(message: &str, names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    to_json(&parse(message).unwrap(), &names, 12345678, 42).to_string()
}

fn field(key: &str, value: &str) -> Token {
    Token::Field {
        key: key.into(),
        sep: '=',
        value: value.into(),
    }
}

#[test]
fn udp_line_keeps_both_lengths_apart() {
    let t = packet(UDP);
    assert_eq!(t[0], field("IN", "vnet1"));
    assert_eq!(t[1], field("OUT", ""));
    assert!(t.contains(&Token::Flag("DF".into())));
    assert_eq!(
        json(UDP, &["blue"]),
        r#"{"kind":"packet","timestamp_us":12345678,"seq":42,"netns":4026532124,"names":["blue"],"NETNS":4026532124,"IN":"vnet1","OUT":"","MAC":"7e:12:a1:32:43:50:26:23:56:85:2f:3b:08:00","SRC":"192.168.0.2","DST":"192.168.0.3","LEN":36,"TOS":"0x00","PREC":"0x00","TTL":64,"ID":61021,"DF":true,"PROTO":"UDP","transport":{"SPT":40000,"DPT":5353,"LEN":16}}"#
    );
}

#[test]
fn tcp_flags_are_true() {
    let j = json(TCP, &[]);
    assert!(j.contains(r#""names":[]"#), "{j}");
    assert!(
        j.ends_with(r#""PROTO":"TCP","transport":{"SPT":80,"DPT":51106,"WINDOW":0,"RES":"0x00","ACK":true,"RST":true,"URGP":0}}"#),
        "{j}"
    );
}

#[test]
fn icmp_echo_ids_do_not_collide() {
    let j = json(ECHO, &[]);
    assert!(j.contains(r#""ID":55332,"DF":true,"PROTO":"ICMP","transport":{"TYPE":8,"CODE":0,"ID":56,"SEQ":0}}"#), "{j}");
}

#[test]
fn icmp_error_inner_packet_is_nested() {
    let t = packet(ICMP_ERROR);
    let Some(Token::Inner(inner)) = t.last() else {
        panic!("{t:?}");
    };
    assert_eq!(inner[0], field("SRC", "10.9.0.1"));
    assert_eq!(inner.len(), 11);
    let j = json(ICMP_ERROR, &[]);
    assert!(
        j.ends_with(r#""PROTO":"ICMP","transport":{"TYPE":3,"CODE":15,"inner":{"SRC":"10.9.0.1","DST":"10.9.0.2","LEN":29,"TOS":"0x06","PREC":"0x00","TTL":202,"ID":35031,"PROTO":"UDP","transport":{"SPT":20417,"DPT":41693,"LEN":27344}}}}"#),
        "{j}"
    );
    // Truncated inner packets and short ones.
    for tail in [
        "[TRUNCATED] ",
        "[SRC=10.9.0.1 DST=10.9.0.2 LEN=35 TOS=0x1E PREC=0xC0 TTL=45 ID=7270 PROTO=ICMP INCOMPLETE [4 bytes] ] MTU=1400 ",
    ] {
        let line = format!("nsfilter: NETNS=1 IN=a OUT= MAC= SRC=1.1.1.1 DST=2.2.2.2 LEN=9 TOS=0x00 PREC=0x00 TTL=1 ID=1 PROTO=ICMP TYPE=3 CODE=4 {tail}");
        let t = packet(&line);
        assert!(matches!(t[t.len() - 1], Token::Inner(_) | Token::Field { .. }), "{t:?}");
    }
    let j = json("nsfilter: NETNS=1 IN=a OUT= MAC= SRC=1.1.1.1 DST=2.2.2.2 LEN=9 TOS=0x00 PREC=0x00 TTL=1 ID=1 PROTO=ICMP TYPE=3 CODE=4 [SRC=3.3.3.3 DST=4.4.4.4 LEN=35 TOS=0x00 PREC=0x00 TTL=1 ID=2 PROTO=ICMP INCOMPLETE [4 bytes] ] MTU=1400 ", &[]);
    assert!(
        j.ends_with(r#""PROTO":"ICMP","transport":{"INCOMPLETE":4}},"MTU":1400}}"#),
        "{j}"
    );
}

#[test]
fn ipv6_and_repeated_fragment_headers() {
    let j = json(IPV6, &[]);
    assert!(j.contains(r#""LEN":51,"TC":142,"HOPLIMIT":130,"FLOWLBL":517775,"PROTO":"UDP","transport":{"SPT":35822,"DPT":841,"LEN":44290}"#), "{j}");
    let j = json(IPV6_FRAGS, &[]);
    assert!(
        j.contains(
            r#""FRAG":0,"ID":"32f33f26","FRAG_2":0,"ID_2":"64c215ab","PROTO":"59","transport":{}"#
        ),
        "{j}"
    );
}

#[test]
fn ratelimit_and_notices() {
    assert_eq!(
        parse(RATELIMIT),
        Some(Line::RateLimit {
            netns: 4026532115,
            suppressed: 2977,
            reasons: Some((2900, 77)),
        })
    );
    assert_eq!(
        json(RATELIMIT, &["blue"]),
        r#"{"kind":"ratelimit","timestamp_us":12345678,"seq":42,"netns":4026532115,"names":["blue"],"suppressed":2977,"suppressed_limit":2900,"suppressed_budget":77}"#
    );
    assert_eq!(
        json(RATELIMIT_OLD, &["blue"]),
        r#"{"kind":"ratelimit","timestamp_us":12345678,"seq":42,"netns":4026532115,"names":["blue"],"suppressed":2977}"#
    );
    let loaded = "nsfilter: loaded: logging PRE_ROUTING in every network namespace";
    assert_eq!(
        json(loaded, &[]),
        r#"{"kind":"notice","timestamp_us":12345678,"seq":42,"message":"loaded: logging PRE_ROUTING in every network namespace"}"#
    );
    assert_eq!(
        parse("nsfilter: unloaded"),
        Some(Line::Notice("unloaded".into()))
    );
    assert_eq!(parse("nsfilterx: NETNS=1 IN=a"), None);
    assert_eq!(parse("e1000: eth0 NIC Link is Up"), None);
}

#[test]
fn unparseable_lines_are_kept_raw() {
    for bad in [
        "nsfilter: NETNS=abc IN=x",
        "nsfilter: NETNS=1 IN=x what?",
        "nsfilter: NETNS=1 OUT= SRC=1.1.1.1",
        "nsfilter: NETNS=1 IN=x [SRC=1.1.1.1 never closed",
        "nsfilter: NETNS=1 IN=x INCOMPLETE [4 bytes",
        "nsfilter: ratelimit: netns x suppressed 1 lines",
        "nsfilter: ratelimit: netns 1 suppressed 1 lines (limit 1 budget 0)",
        "nsfilter: ratelimit: something new",
    ] {
        assert_eq!(parse(bad), Some(Line::Raw(bad.into())), "{bad}");
    }
    assert_eq!(
        json("nsfilter: NETNS=1 IN=x \"quoted\\\"", &[]),
        r#"{"kind":"raw","timestamp_us":12345678,"seq":42,"raw":"nsfilter: NETNS=1 IN=x \"quoted\\\""}"#
    );
}

#[test]
fn names_go_right_after_the_inode() {
    let names = vec!["blue".to_string(), "docker:3f1c2a9b8d7e".to_string()];
    let out = with_names(UDP, &parse(UDP).unwrap(), &names);
    assert!(
        out.starts_with("nsfilter: NETNS=4026532124 NAME=blue,docker:3f1c2a9b8d7e IN=vnet1 OUT= "),
        "{out}"
    );
    assert_eq!(
        &out[out.find(" IN=").unwrap()..],
        &UDP[UDP.find(" IN=").unwrap()..]
    );
    let out = with_names(RATELIMIT, &parse(RATELIMIT).unwrap(), &names[..1]);
    assert_eq!(
        out,
        "nsfilter: ratelimit: netns 4026532115 NAME=blue suppressed 2977 lines (limit 2900, budget 77)"
    );
    assert_eq!(with_names(UDP, &parse(UDP).unwrap(), &[]), UDP);
    let odd = vec!["a b,c\\é".to_string()];
    assert!(with_names(UDP, &parse(UDP).unwrap(), &odd)
        .contains(" NAME=a\\x20b\\x2cc\\x5c\\xc3\\xa9 IN="));
}

#[test]
fn every_line_of_the_kernel_fixture_parses_without_loss() {
    let fixture = include_str!("../../tests/fixtures/logformat-6.12.tsv");
    let mut n = 0;
    for record in fixture
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let text = record.split('\t').nth(3).unwrap();
        let line = format!("nsfilter: NETNS=4026532124 {text}");
        let tokens = packet(&line);
        let original: Vec<String> = text
            .split(' ')
            .map(|w| w.trim_matches(|c| c == '[' || c == ']'))
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect();
        assert_eq!(words(&tokens), original, "{text}");
        // No key collides in an object except the documented `_2` ones.
        let j = json(&line, &[]);
        assert!(
            !j.contains("_2\"") || text.matches("FRAG:").count() > 1,
            "{j}"
        );
        n += 1;
    }
    assert!(n > 300, "{n} fixture lines");
}
