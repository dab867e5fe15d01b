//! etcd backend over the `etcd-client` crate.

use crate::api::StoreError;

pub struct EtcdStore {}

impl EtcdStore {
    pub async fn connect(_endpoints: &[String]) -> Result<EtcdStore, StoreError> {
        Err(StoreError::Backend("not yet".into()))
    }
}
