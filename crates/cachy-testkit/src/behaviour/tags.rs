//! Tags: flushing a tag reaches exactly the items stored under it.

use super::*;

/// Python cachy's documented example: flushing `people` and `authors` removes John (people, artists) and
/// Anne (people, authors).
pub async fn tags_flushing_people_and_authors_removes_john_and_anne(repo: &Repository) {
    repo.tags(("people", "artists"))
        .put("John", &ann(), TEN_MINUTES)
        .await
        .unwrap();
    repo.tags(["people", "authors"])
        .put("Anne", "anne", TEN_MINUTES)
        .await
        .unwrap();
    assert_eq!(
        repo.tags(("people", "artists"))
            .get::<User>("John")
            .await
            .unwrap(),
        Some(ann())
    );
    assert_eq!(
        repo.tags(("people", "authors"))
            .get::<String>("Anne")
            .await
            .unwrap()
            .as_deref(),
        Some("anne")
    );
    repo.tags(("people", "authors")).flush().await.unwrap();
    assert_eq!(
        repo.tags(("people", "artists"))
            .get::<User>("John")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repo.tags(("people", "authors"))
            .get::<String>("Anne")
            .await
            .unwrap(),
        None
    );
}

/// Python cachy's documented example: flushing `authors` alone removes Anne but not John.
pub async fn tags_flushing_authors_keeps_john(repo: &Repository) {
    repo.tags(("people", "artists"))
        .put("John", "john", TEN_MINUTES)
        .await
        .unwrap();
    repo.tags(("people", "authors"))
        .put("Anne", "anne", TEN_MINUTES)
        .await
        .unwrap();
    repo.tags("authors").flush().await.unwrap();
    assert_eq!(
        repo.tags(("people", "artists"))
            .get::<String>("John")
            .await
            .unwrap()
            .as_deref(),
        Some("john")
    );
    assert_eq!(
        repo.tags(("people", "authors"))
            .get::<String>("Anne")
            .await
            .unwrap(),
        None
    );
}

/// Tagged items live apart from untagged ones and from other tag sets (order included).
pub async fn tagged_items_are_apart_from_untagged_and_other_tags(repo: &Repository) {
    repo.put("k", "plain", TEN_MINUTES).await.unwrap();
    repo.tags(("a", "b"))
        .put("k", "ab", TEN_MINUTES)
        .await
        .unwrap();
    repo.tags(("b", "a"))
        .put("k", "ba", TEN_MINUTES)
        .await
        .unwrap();
    assert_eq!(
        repo.get::<String>("k").await.unwrap().as_deref(),
        Some("plain")
    );
    assert_eq!(
        repo.tags(("a", "b"))
            .get::<String>("k")
            .await
            .unwrap()
            .as_deref(),
        Some("ab")
    );
    assert_eq!(
        repo.tags(vec!["b", "a"])
            .get::<String>("k")
            .await
            .unwrap()
            .as_deref(),
        Some("ba")
    );
    repo.tags("a").flush().await.unwrap();
    assert_eq!(
        repo.get::<String>("k").await.unwrap().as_deref(),
        Some("plain"),
        "untagged stays"
    );
}

/// The whole repository API works under tags, and a flush invalidates forever items too.
pub async fn every_method_works_under_tags(repo: &Repository) {
    let tagged = repo.tags(("t1", "t2"));
    assert!(tagged.add("added", "v", TEN_MINUTES).await.unwrap());
    assert!(!tagged.add("added", "w", TEN_MINUTES).await.unwrap());
    assert_eq!(tagged.increment_by("n", 5).await.unwrap(), 5);
    assert_eq!(tagged.decrement("n").await.unwrap(), 4);
    tagged.forever("forever", &ann()).await.unwrap();
    let remembered: u32 = tagged
        .remember("remembered", TEN_MINUTES, || async {
            Ok::<_, cachy::Error>(7)
        })
        .await
        .unwrap();
    assert_eq!(remembered, 7);
    let remembered_forever: u32 = tagged
        .remember_forever("remembered-forever", || async { Ok::<_, cachy::Error>(8) })
        .await
        .unwrap();
    assert_eq!(remembered_forever, 8);
    tagged
        .put_many(&[("m1", 1), ("m2", 2)], TEN_MINUTES)
        .await
        .unwrap();
    assert_eq!(
        tagged.many::<i32>(&["m1", "x", "m2"]).await.unwrap(),
        [Some(1), None, Some(2)]
    );
    assert!(tagged.has("added").await.unwrap());
    assert_eq!(tagged.get_or("x", 3).await.unwrap(), 3);
    assert_eq!(
        tagged.pull::<String>("added").await.unwrap().as_deref(),
        Some("v")
    );
    assert!(!tagged.forget("added").await.unwrap());
    assert!(
        !repo.has("forever").await.unwrap(),
        "tagged keys are namespaced"
    );
    tagged.flush().await.unwrap();
    for key in ["n", "forever", "remembered", "remembered-forever", "m1"] {
        assert!(!tagged.has(key).await.unwrap(), "{key} survived the flush");
    }
    let after = repo.tags(("t1", "t2"));
    after.put("new", "v", TEN_MINUTES).await.unwrap();
    assert!(after.has("new").await.unwrap(), "tags work after a flush");
}

/// An error under tags names the key as the caller gave it, not the store key in the tags'
/// namespace: a read of the wrong type, a counter that is not one, a `pull` and a `many`.
pub async fn an_error_under_tags_names_the_key_as_given(repo: &Repository) {
    let tagged = repo.tags(["t"]);
    tagged.put("text", "abc", TEN_MINUTES).await.unwrap();
    let errors = [
        tagged.get::<i64>("text").await.unwrap_err(),
        tagged.increment("text").await.unwrap_err(),
        tagged.pull::<i64>("text").await.unwrap_err(),
        tagged.many::<i64>(&["text"]).await.unwrap_err(),
        tagged.get_shared::<i64>("text").await.unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.key(), Some("text"), "{err}");
        assert_eq!(err.store(), Some(repo.name()), "{err}");
        assert!(err.to_string().contains("key \"text\""), "{err}");
    }
    assert_eq!(
        tagged.get::<String>("text").await.unwrap().as_deref(),
        Some("abc")
    );
    // A key of the caller's that looks like a namespace is named whole.
    let lookalike = "0123456789abcdef0123456789abcdef01234567:x";
    tagged.put(lookalike, "abc", TEN_MINUTES).await.unwrap();
    let err = tagged.get::<i64>(lookalike).await.unwrap_err();
    assert_eq!(err.key(), Some(lookalike), "{err}");
    let invalid = cachy::RememberOptions::new(Duration::from_secs(60)).jitter(5.0);
    let err = tagged
        .remember_with::<i64, cachy::Error, _, _>(lookalike, &invalid, || async { Ok(1) })
        .await
        .unwrap_err();
    assert_eq!(err.key(), Some(lookalike), "{err}");
}
