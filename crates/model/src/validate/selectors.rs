//! Label selectors (`matchLabels` and `matchExpressions`), as in NetworkPolicy.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::names::{check_labels, label_value, qualified_name};
use super::report::{show, Report};

const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];

/// Checks every part of a selector at `path` (`spec.podSelector`).
pub fn check_selector(r: &mut Report, path: &str, sel: &LabelSelector) {
    if let Some(labels) = &sel.match_labels {
        check_labels(r, &format!("{path}.matchLabels"), labels);
    }
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let at = format!("{path}.matchExpressions[{i}]");
        r.check(
            format!("{at}.key"),
            &req.key,
            qualified_name(&req.key, "label key"),
        );
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            op @ ("In" | "NotIn") => {
                if values.is_empty() {
                    r.push(
                        format!("{at}.values"),
                        format!("at least one value for operator {op}"),
                        if req.values.is_some() {
                            "an empty list"
                        } else {
                            "nothing"
                        },
                    );
                }
            }
            op @ ("Exists" | "DoesNotExist") => {
                if !values.is_empty() {
                    r.push(
                        format!("{at}.values"),
                        format!("no values for operator {op} (it tests only the key)"),
                        show(values),
                    );
                }
            }
            other => {
                r.check_enum(format!("{at}.operator"), other, OPERATORS);
            }
        }
        for (j, v) in values.iter().enumerate() {
            r.check(format!("{at}.values[{j}]"), v, label_value(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        let sel: LabelSelector = serde_yaml_ng::from_str(yaml).unwrap();
        let mut r = Report::new();
        check_selector(&mut r, "spec.podSelector", &sel);
        r.into_errors().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn good_selectors() {
        for y in [
            "{}",
            "matchLabels: {app: web, app.kubernetes.io/part-of: shop}",
            "matchExpressions: [{key: tier, operator: In, values: [front, back]}]",
            "matchExpressions: [{key: tier, operator: NotIn, values: [db]}]",
            "matchExpressions: [{key: canary, operator: Exists}, {key: x, operator: DoesNotExist, values: []}]",
            "matchExpressions: [{key: t, operator: In, values: ['']}]",
        ] {
            assert_eq!(errors(y), Vec::<String>::new(), "{y}");
        }
    }

    #[test]
    fn bad_selectors() {
        let cases = [
            (
                "matchLabels: {app: -web}",
                "spec.podSelector.matchLabels[\"app\"]: expected a label value",
            ),
            (
                "matchExpressions: [{key: tier, operator: in, values: [a]}]",
                "spec.podSelector.matchExpressions[0].operator: expected one of In|NotIn|Exists|DoesNotExist, found \"in\"",
            ),
            (
                "matchExpressions: [{key: tier, operator: In}]",
                "spec.podSelector.matchExpressions[0].values: expected at least one value for operator In, found nothing",
            ),
            (
                "matchExpressions: [{key: tier, operator: NotIn, values: []}]",
                "spec.podSelector.matchExpressions[0].values: expected at least one value for operator NotIn, found an empty list",
            ),
            (
                "matchExpressions: [{key: tier, operator: Exists, values: [a]}]",
                "spec.podSelector.matchExpressions[0].values: expected no values for operator Exists (it tests only the key), found [\"a\"]",
            ),
            (
                "matchExpressions: [{key: 'a b', operator: Exists}]",
                "spec.podSelector.matchExpressions[0].key: expected a label key",
            ),
            (
                "matchExpressions: [{key: t, operator: Exists}, {key: t, operator: In, values: [ok, 'no way']}]",
                "spec.podSelector.matchExpressions[1].values[1]: expected a label value",
            ),
        ];
        for (y, want) in cases {
            let errs = errors(y);
            assert_eq!(errs.len(), 1, "{y}: {errs:?}");
            assert!(errs[0].starts_with(want), "{y}: {}", errs[0]);
        }
    }
}
