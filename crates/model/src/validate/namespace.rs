//! Namespace: the name is a DNS-1123 label (checked with the metadata, see `meta.rs`);
//! `spec.finalizers` are qualified names.

use k8s_openapi::api::core::v1::Namespace;

use super::names::qualified_name;
use super::report::Report;

pub fn check(r: &mut Report, ns: &Namespace) {
    let finalizers = ns.spec.iter().flat_map(|s| s.finalizers.iter().flatten());
    for (i, f) in finalizers.enumerate() {
        r.check(
            format!("spec.finalizers[{i}]"),
            f,
            qualified_name(f, "finalizer name"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid};

    #[test]
    fn namespaces() {
        assert_valid("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
        assert_valid("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\nspec: {finalizers: [kubernetes]}\n");
        assert_one(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop.eu}\n",
            "metadata.name: expected a DNS-1123 label: at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit (e.g. \"web-1\"), found \"shop.eu\"",
        );
        assert_one(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: Shop}\n",
            "metadata.name: expected a DNS-1123 label",
        );
        assert_one(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\nspec: {finalizers: ['a b']}\n",
            "spec.finalizers[0]: expected a finalizer name",
        );
    }
}
