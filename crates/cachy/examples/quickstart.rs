//! The quick start: Python cachy's usage examples on the embedded default stores (memory and
//! file), no server needed. Run with `cargo run --example quickstart`.

use std::time::Duration;

use cachy::CacheManager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

async fn load_users_from_database() -> Result<Vec<User>, cachy::Error> {
    Ok(vec![
        User {
            id: 1,
            name: "John".into(),
        },
        User {
            id: 2,
            name: "Anne".into(),
        },
    ])
}

#[tokio::main]
async fn main() -> Result<(), cachy::Error> {
    let folder = std::env::temp_dir().join("cachy-quickstart");
    let cache = CacheManager::from_value(serde_json::json!({
        "default": "dict",
        "serializer": "pickle",
        "stores": {
            "dict": { "driver": "dict" },
            "file": { "driver": "file", "path": folder, "serializer": "json" }
        }
    }))?;

    // Storing and retrieving: whole minutes as in Python cachy, or a Duration.
    cache.put("foo", "bar", 10).await?;
    let value: Option<String> = cache.get("foo").await?;
    println!("get foo            -> {value:?}");
    println!(
        "get missing or ... -> {}",
        cache.get_or("missing", "default".to_owned()).await?
    );

    // A specific store.
    cache
        .store("file")?
        .put("foo", "on disk", Duration::from_secs(30))
        .await?;
    println!(
        "file store foo     -> {:?}",
        cache.store("file")?.get::<String>("foo").await?
    );

    // add only adds once; counters.
    println!(
        "add once           -> {}",
        cache.add("key", "value", 10).await?
    );
    println!(
        "add again          -> {}",
        cache.add("key", "other", 10).await?
    );
    cache.increment("visits").await?;
    println!(
        "increment by 3     -> {}",
        cache.increment_by("visits", 3).await?
    );

    // Retrieve or update.
    let users = cache
        .remember("users", 10, load_users_from_database)
        .await?;
    println!("remember users     -> {users:?}");

    // Retrieve and delete; forever; forget.
    println!(
        "pull foo           -> {:?}",
        cache.pull::<String>("foo").await?
    );
    cache.forever("config", &vec!["a", "b"]).await?;
    println!("forget config      -> {}", cache.forget("config").await?);

    cache.store("file")?.flush().await?;
    Ok(())
}
