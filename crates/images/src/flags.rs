//! Command lines in the style of Go's `pflag`, as agnhost's cobra subcommands take them:
//! `--name=value`, `--name value`, boolean `--name` / `--name=false`, flags before or
//! after positional arguments, `--` ending the flags. A single leading dash is accepted
//! too (`-port 80`), as Go's standard `flag` package does.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::ParseError;

/// Whether a flag takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--name` means true; `--name=false` sets it explicitly (never `--name false`).
    Bool,
    /// `--name=value` or `--name value`.
    Value,
}

/// A parsed command line: the last value given for each flag, and the positionals.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    values: HashMap<&'static str, String>,
    pub(crate) positionals: Vec<String>,
}

/// Parses `args` against `spec`; unknown flags are errors.
pub(crate) fn parse(args: &[String], spec: &[(&'static str, Kind)]) -> Result<Parsed, ParseError> {
    let mut parsed = Parsed::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            parsed.positionals.extend(iter.by_ref().cloned());
            break;
        }
        let Some(body) = flag_body(arg) else {
            parsed.positionals.push(arg.clone());
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(name, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(ParseError::UnknownFlag(name.to_string()));
        };
        let value = match (kind, inline) {
            (_, Some(v)) => v.to_string(),
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Value, None) => iter
                .next()
                .cloned()
                .ok_or_else(|| ParseError::MissingValue(name.to_string()))?,
        };
        parsed.values.insert(name, value);
    }
    Ok(parsed)
}

/// The part after the dashes of something that looks like a flag.
fn flag_body(arg: &str) -> Option<&str> {
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    (!body.is_empty() && !body.starts_with('-')).then_some(body)
}

impl Parsed {
    /// The value of a string flag, if given.
    pub(crate) fn string(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// An integer flag, or `default` when absent.
    pub(crate) fn int(&self, name: &str, default: i64) -> Result<i64, ParseError> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| invalid(name, "an integer", v)),
        }
    }

    /// A boolean flag (Go's `strconv.ParseBool` spellings), or `default` when absent.
    pub(crate) fn bool(&self, name: &str, default: bool) -> Result<bool, ParseError> {
        match self.values.get(name).map(String::as_str) {
            None => Ok(default),
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
            Some(v) => Err(invalid(name, "true or false", v)),
        }
    }

    /// A Go duration flag (`1s`, `500ms`, `1m30s`, `0`), if given.
    pub(crate) fn duration(&self, name: &str) -> Result<Option<Duration>, ParseError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(v) => parse_go_duration(v)
                .map(Some)
                .map_err(|_| invalid(name, "a duration such as 1s or 500ms", v)),
        }
    }
}

fn invalid(flag: &str, expected: &'static str, found: &str) -> ParseError {
    ParseError::InvalidFlag {
        flag: flag.to_string(),
        expected,
        found: found.to_string(),
    }
}

/// Parses a Go `time.ParseDuration` string; negative durations are refused.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, ()> {
    let s = text.strip_prefix('+').unwrap_or(text);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let len = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(()),
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| ())?
        };
        total = total
            .checked_add(int.checked_mul(nanos_per).ok_or(())?)
            .ok_or(())?;
        // Fractions beyond nanoseconds are dropped, as Go does.
        let frac_digits = &frac_part[..frac_part.len().min(18)];
        if !frac_digits.is_empty() {
            let frac: u128 = frac_digits.parse().map_err(|_| ())?;
            let scale = 10u128.pow(frac_digits.len() as u32);
            total += frac * nanos_per / scale;
        }
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| ())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration so that [`parse_go_duration`] reads it back exactly.
pub(crate) fn format_go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    const SPEC: &[(&str, Kind)] = &[
        ("port", Kind::Value),
        ("tcp", Kind::Bool),
        ("http", Kind::Bool),
    ];

    #[test]
    fn pflag_forms() {
        let p = parse(
            &strings(&["--tcp", "--http=false", "--port", "80", "pos", "-port=81"]),
            SPEC,
        )
        .unwrap();
        assert!(p.bool("tcp", false).unwrap());
        assert!(!p.bool("http", true).unwrap());
        assert_eq!(p.int("port", 9376).unwrap(), 81, "the last value wins");
        assert_eq!(p.positionals, strings(&["pos"]));
    }

    #[test]
    fn value_flags_take_negative_numbers_and_double_dash_ends_flags() {
        let p = parse(&strings(&["--port", "-1", "--", "--tcp"]), SPEC).unwrap();
        assert_eq!(p.int("port", 0).unwrap(), -1);
        assert!(!p.bool("tcp", false).unwrap());
        assert_eq!(p.positionals, strings(&["--tcp"]));
    }

    #[test]
    fn errors_name_the_flag() {
        let e = parse(&strings(&["--nope"]), SPEC).unwrap_err();
        assert_eq!(e.to_string(), "unknown flag --nope");
        let e = parse(&strings(&["--port"]), SPEC).unwrap_err();
        assert_eq!(e.to_string(), "flag --port needs a value");
        let p = parse(&strings(&["--port=x", "--tcp=maybe"]), SPEC).unwrap();
        assert!(p.int("port", 0).unwrap_err().to_string().contains("\"x\""));
        assert!(p.bool("tcp", false).is_err());
    }

    #[test]
    fn go_durations() {
        let ok = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("2us"), Duration::from_micros(2));
        assert_eq!(ok("+3ns"), Duration::from_nanos(3));
        for bad in ["", "1", "s", "-1s", "1x", "1.s.", "."] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should be refused");
        }
        for d in [
            Duration::from_secs(3),
            Duration::from_millis(1500),
            Duration::ZERO,
        ] {
            assert_eq!(ok(&format_go_duration(d)), d);
        }
    }
}
