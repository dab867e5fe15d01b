//! One file per subcommand.

pub mod agent;
pub mod apply;
pub mod completion;
pub mod controller;
pub mod delete;
pub mod exec;
pub mod get;
pub mod lab;
pub mod logs;
pub mod version;

use std::sync::Arc;

use anyhow::Context;
use podnet_store::{Api, Store};

/// Opens the store named by `--store`.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    podnet_store::open(url)
        .await
        .with_context(|| format!("opening the store {url}"))
}

/// Typed access to the store named by `--store`.
pub async fn api(url: &str) -> anyhow::Result<Api> {
    Ok(Api::new(open(url).await?))
}

/// A pod, or a NotFound error in kubectl's words.
pub async fn get_pod(
    api: &Api,
    namespace: &str,
    name: &str,
) -> anyhow::Result<podnet_model::k8s_openapi::api::core::v1::Pod> {
    match api
        .get(podnet_model::Kind::Pod, Some(namespace), name)
        .await?
    {
        Some(podnet_model::Object::Pod(p)) => Ok(p),
        _ => anyhow::bail!("(NotFound) pod {name:?} not found in namespace {namespace:?}"),
    }
}
