//! `delete`: objects by reference; deleting a Namespace deletes everything in it first,
//! as the namespace controller does. Deleting what is already gone is not an error
//! (it is reported as not found).

use podnet_model::{Kind, ObjectRef};
use podnet_store::typed::ApiError;
use podnet_store::Api;

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub object: ObjectRef,
    /// False when it did not exist.
    pub existed: bool,
    /// Objects removed with it (a namespace's contents).
    pub cascaded: usize,
}

/// Deletes each object in turn.
pub async fn delete(api: &Api, refs: &[ObjectRef]) -> Result<Vec<Deleted>, ApiError> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let mut cascaded = 0;
        if r.kind == Kind::Namespace && api.get(Kind::Namespace, None, &r.name).await?.is_some() {
            for kind in Kind::ALL.iter().filter(|k| k.namespaced()) {
                cascaded += api
                    .store()
                    .delete_prefix(&kind.prefix(Some(&r.name)))
                    .await?;
            }
        }
        let existed = api.delete(r).await?;
        out.push(Deleted {
            object: r.clone(),
            existed,
            cascaded,
        });
    }
    Ok(out)
}
