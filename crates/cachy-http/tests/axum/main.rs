//! The layer in a real axum server on a loopback port, asked by a real HTTP client (and
//! once by `curl`, in `processes.rs`): each module a concern.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use axum::Router;
use cachy::{CacheManager, Repository};

/// What adversarial reviews found, each kept from coming back.
mod hostile;
/// Hits, misses, `Vary`, privacy, `304`, stale responses, single flight, tags, the body
/// limit, hosts, a store that is down: every route behind its own layer in one server.
mod routes;
/// What HTTP says beyond the basics: revalidation, writes that invalidate, responses that
/// cannot be kept, request directives, `Age`, absent headers, nested routers, panics.
mod semantics;

/// A memory store's manager and repository.
fn cache() -> (CacheManager, Repository) {
    let manager =
        CacheManager::from_value(serde_json::json!({ "stores": { "dict": { "driver": "dict" } } }))
            .unwrap();
    let repository = manager.store(None).unwrap();
    (manager, repository)
}

/// A memory store's repository.
fn repository() -> Repository {
    cache().1
}

/// `app` served on a loopback port, and its address.
async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

fn x_cache(response: &reqwest::Response) -> String {
    response.headers()["x-cache"].to_str().unwrap().to_owned()
}

/// A counter of handler runs, and a clone for the handler.
fn counter() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    (runs.clone(), runs)
}

/// The body of a `GET` of `url`.
async fn text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}
