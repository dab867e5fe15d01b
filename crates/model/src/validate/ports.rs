//! Port numbers, port names (IANA_SVC_NAME, RFC 6335) and protocols.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::report::{quote, Mismatch, Report};

pub const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
pub const PORT_NAME: &str = "a port name (IANA_SVC_NAME): at most 15 lower-case letters, digits or '-', with at least one letter and no '-' at either end or next to another '-' (e.g. \"http\")";
const PORT_NUMBER: &str = "a port number between 1 and 65535";

pub fn is_port_number(n: i32) -> bool {
    (1..=65535).contains(&n)
}

/// IANA_SVC_NAME: `[-a-z0-9]{1,15}`, a letter somewhere, no leading, trailing or
/// double '-'.
pub fn port_name(s: &str) -> Result<(), Mismatch> {
    if s.len() > 15 {
        return Err(Mismatch::length(PORT_NAME));
    }
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Mismatch::new(PORT_NAME))
    }
}

/// A port number at `field`: 1..=65535.
pub fn check_port(r: &mut Report, field: impl Into<String>, n: i32) -> bool {
    if is_port_number(n) {
        return true;
    }
    r.push(field, PORT_NUMBER, n.to_string());
    false
}

/// An optional protocol (absent means TCP).
pub fn check_protocol(r: &mut Report, field: impl Into<String>, protocol: Option<&str>) {
    if let Some(p) = protocol {
        r.check_enum(field, p, PROTOCOLS);
    }
}

/// The protocol as used for duplicate checks: absent is TCP.
pub fn protocol_or_tcp(protocol: Option<&str>) -> &str {
    protocol.unwrap_or("TCP")
}

/// A port given by number (1..=65535) or by name (IANA_SVC_NAME).
pub fn check_port_or_name(r: &mut Report, field: impl Into<String>, port: &IntOrString) -> bool {
    match port {
        IntOrString::Int(n) if is_port_number(*n) => true,
        IntOrString::Int(n) => {
            r.push(
                field,
                format!("{PORT_NUMBER} or a port name"),
                n.to_string(),
            );
            false
        }
        IntOrString::String(s) => match port_name(s) {
            Ok(()) => true,
            Err(m) => {
                // A number written as a string ("8080") is a common slip: say so.
                let expected = if s.bytes().all(|c| c.is_ascii_digit()) && !s.is_empty() {
                    format!("{PORT_NUMBER} written without quotes, or {}", m.expected)
                } else {
                    m.expected.clone()
                };
                let found = if s.is_empty() { quote(s) } else { m.found(s) };
                r.push(field, expected, found);
                false
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_follow_iana() {
        for good in ["http", "h2", "web-1", "a", "x-y-z", "abcdefghijklmno", "1a"] {
            assert!(port_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "HTTP",
            "http_1",
            "-http",
            "http-",
            "a--b",
            "8080",
            "abcdefghijklmnop",
            "a.b",
        ] {
            assert!(port_name(bad).is_err(), "{bad}");
        }
        assert!(port_name("abcdefghijklmnop").unwrap_err().show_length);
    }

    #[test]
    fn numbers_names_and_protocols() {
        let mut r = Report::new();
        assert!(check_port(&mut r, "a", 1));
        assert!(check_port(&mut r, "a", 65535));
        assert!(!check_port(&mut r, "b", 0));
        assert!(!check_port(&mut r, "c", 65536));
        check_protocol(&mut r, "d", Some("SCTP"));
        check_protocol(&mut r, "d", None);
        check_protocol(&mut r, "e", Some("tcp"));
        assert!(check_port_or_name(
            &mut r,
            "f",
            &IntOrString::String("http".into())
        ));
        assert!(check_port_or_name(&mut r, "f", &IntOrString::Int(8080)));
        assert!(!check_port_or_name(&mut r, "g", &IntOrString::Int(-1)));
        assert!(!check_port_or_name(
            &mut r,
            "h",
            &IntOrString::String("Web_1".into())
        ));
        assert!(!check_port_or_name(
            &mut r,
            "i",
            &IntOrString::String("8080".into())
        ));
        let shown: Vec<String> = r.errors().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown[0],
            "b: expected a port number between 1 and 65535, found 0"
        );
        assert_eq!(
            shown[1],
            "c: expected a port number between 1 and 65535, found 65536"
        );
        assert_eq!(shown[2], "e: expected one of TCP|UDP|SCTP, found \"tcp\"");
        assert_eq!(
            shown[3],
            "g: expected a port number between 1 and 65535 or a port name, found -1"
        );
        assert_eq!(
            shown[4],
            format!("h: expected {PORT_NAME}, found \"Web_1\"")
        );
        assert!(shown[5].contains("written without quotes"), "{}", shown[5]);
        assert_eq!(protocol_or_tcp(None), "TCP");
    }
}
