//! Reaching etcd members that listen on unix sockets (`--listen-client-urls
//! unix:///path`): the etcd client speaks gRPC over TCP, so each socket gets a
//! forwarder on a loopback port of this process, copying bytes both ways. This is how
//! the CLI reaches a lab's etcd, whose members live in network namespaces no route
//! from the machine's own namespace leads to (and none may be added).

use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixStream};

use crate::api::StoreError;

/// Starts one forwarder per socket; returns the `http://127.0.0.1:PORT` endpoints.
/// The forwarders run as tasks of the current runtime for as long as it lives.
pub async fn forward(sockets: &[PathBuf]) -> Result<Vec<String>, StoreError> {
    let mut endpoints = Vec::with_capacity(sockets.len());
    for path in sockets {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| unavailable(path, format!("binding a loopback forwarder: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| unavailable(path, e.to_string()))?;
        endpoints.push(format!("http://{addr}"));
        let path = path.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                let path = path.clone();
                tokio::spawn(async move {
                    match UnixStream::connect(&path).await {
                        Ok(mut unix) => {
                            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                        }
                        Err(e) => {
                            tracing::debug!(socket = %path.display(), error = %e, "etcd socket unreachable");
                        }
                    }
                });
            }
        });
    }
    Ok(endpoints)
}

fn unavailable(path: &Path, message: String) -> StoreError {
    StoreError::Unavailable {
        endpoint: format!("unix://{}", path.display()),
        message,
    }
}
