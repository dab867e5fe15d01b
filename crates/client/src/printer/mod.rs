//! The tables `podnet get` prints, kubectl-style: upper-case headers, columns padded
//! to the widest cell plus three spaces, `<none>` for empty values.

mod columns;

use jiff::Timestamp;
use podnet_model::{Kind, Object};

pub use columns::{headers, row};

/// Renders rows under headers with kubectl's spacing.
pub fn render(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i < last {
                let pad = widths[i] + 3 - c.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(headers, &mut out);
    for r in rows {
        line(r, &mut out);
    }
    out
}

/// A table of objects of one kind; `all_namespaces` adds the NAMESPACE column.
pub fn table(
    kind: Kind,
    objects: &[Object],
    wide: bool,
    all_namespaces: bool,
    now: Timestamp,
) -> String {
    let mut h = headers(kind, wide);
    if all_namespaces && kind.namespaced() {
        h.insert(0, "NAMESPACE".to_string());
    }
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            let mut r = row(o, wide, now);
            if all_namespaces && kind.namespaced() {
                r.insert(0, o.namespace().unwrap_or_default().to_string());
            }
            r
        })
        .collect();
    render(&h, &rows)
}

/// kubectl's human-readable age.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds;
    if s < -1 {
        return "<invalid>".into();
    }
    let s = s.max(0);
    let (m, h, days) = (s / 60, s / 3600, s / 86400);
    let years = days / 365;
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => match s % 60 {
            0 => format!("{m}m"),
            sec => format!("{m}m{sec}s"),
        },
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => match m % 60 {
            0 => format!("{h}h"),
            min => format!("{h}h{min}m"),
        },
        _ if h < 48 => format!("{h}h"),
        _ if days < 8 => match h % 24 {
            0 => format!("{days}d"),
            hr => format!("{days}d{hr}h"),
        },
        _ if years < 2 => format!("{days}d"),
        _ if years < 8 => match days % 365 {
            0 => format!("{years}y"),
            dd => format!("{years}y{dd}d"),
        },
        _ => format!("{years}y"),
    }
}

/// The AGE cell of an object.
pub fn age(obj: &Object, now: Timestamp) -> String {
    match &obj.meta().creation_timestamp {
        Some(t) => human_duration(now.duration_since(t.0).as_secs()),
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        let d = |s: i64| s;
        assert_eq!(human_duration(d(5)), "5s");
        assert_eq!(human_duration(d(119)), "119s");
        assert_eq!(human_duration(d(185)), "3m5s");
        assert_eq!(human_duration(d(600)), "10m");
        assert_eq!(human_duration(d(3 * 3600 + 120)), "3h2m");
        assert_eq!(human_duration(d(10 * 3600)), "10h");
        assert_eq!(human_duration(d(3 * 86400 + 3600)), "3d1h");
        assert_eq!(human_duration(d(30 * 86400)), "30d");
        assert_eq!(human_duration(d(-5)), "<invalid>");
    }

    #[test]
    fn columns_align() {
        let t = render(
            &["NAME".into(), "TYPE".into()],
            &[
                vec!["a-long-name".into(), "ClusterIP".into()],
                vec!["b".into(), "NodePort".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME          TYPE\na-long-name   ClusterIP\nb             NodePort\n"
        );
    }
}
