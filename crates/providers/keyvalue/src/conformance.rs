//! The behaviour every backend must share, as one function each backend's tests call
//! against a real server: `conformance::check(&backend, "bucket").await`.
//!
//! It panics with a message naming the failed expectation, so it is only for tests.

use crate::{Error, KeyValue};

/// Runs the shared checks against `store`, in bucket `identifier`, which should be empty or
/// hold only keys this function writes (they start with `conformance:`).
#[allow(clippy::unwrap_used)]
pub async fn check(store: &dyn KeyValue, identifier: &str) {
    store.health().await.expect("a running backend is healthy");
    let b = store.open(identifier).await.expect("open");
    let p = |k: &str| format!("conformance:{k}");

    b.delete_many(vec![p("a"), p("b"), p("c"), p("n"), p("text")])
        .await
        .expect("clean up");

    // store
    assert_eq!(
        b.get(&p("a")).await.unwrap(),
        None,
        "a missing key reads as none"
    );
    assert!(
        !b.exists(&p("a")).await.unwrap(),
        "a missing key does not exist"
    );
    b.set(&p("a"), b"one".to_vec()).await.unwrap();
    assert_eq!(
        b.get(&p("a")).await.unwrap(),
        Some(b"one".to_vec()),
        "read your write"
    );
    assert!(b.exists(&p("a")).await.unwrap());
    b.set(&p("a"), vec![0, 255, 7]).await.unwrap();
    assert_eq!(
        b.get(&p("a")).await.unwrap(),
        Some(vec![0, 255, 7]),
        "binary values round-trip"
    );
    b.set(&p("empty"), vec![]).await.unwrap();
    assert_eq!(
        b.get(&p("empty")).await.unwrap(),
        Some(vec![]),
        "an empty value is not a missing one"
    );
    b.delete(&p("empty")).await.unwrap();
    b.delete(&p("a")).await.unwrap();
    assert_eq!(b.get(&p("a")).await.unwrap(), None, "delete removes");
    b.delete(&p("a"))
        .await
        .expect("deleting a missing key succeeds");

    // atomics
    assert_eq!(
        b.increment(&p("n"), 5).await.unwrap(),
        5,
        "increment starts from zero"
    );
    assert_eq!(b.increment(&p("n"), 2).await.unwrap(), 7);
    assert_eq!(
        b.get(&p("n")).await.unwrap(),
        Some(b"7".to_vec()),
        "counters are stored as decimal text"
    );
    b.set(&p("text"), b"not a number".to_vec()).await.unwrap();
    assert!(
        matches!(b.increment(&p("text"), 1).await, Err(Error::Other(_))),
        "incrementing text is an error"
    );
    assert_eq!(
        b.get(&p("text")).await.unwrap(),
        Some(b"not a number".to_vec()),
        "a failed increment changes nothing"
    );

    // batch
    b.set_many(vec![(p("a"), b"1".to_vec()), (p("b"), b"2".to_vec())])
        .await
        .unwrap();
    let got = b.get_many(vec![p("a"), p("c"), p("b")]).await.unwrap();
    assert_eq!(
        got,
        vec![
            Some((p("a"), b"1".to_vec())),
            None,
            Some((p("b"), b"2".to_vec()))
        ],
        "get-many answers in order with none for missing keys"
    );
    b.delete_many(vec![p("a"), p("b"), p("c")]).await.unwrap();
    assert_eq!(
        b.get_many(vec![p("a"), p("b")]).await.unwrap(),
        vec![None, None]
    );

    // list-keys: every key appears exactly once across pages.
    let mut written: Vec<String> = (0..7).map(|i| p(&format!("list{i}"))).collect();
    for k in &written {
        b.set(k, vec![1]).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = b.list_keys(cursor, 3).await.unwrap();
        assert!(
            page.keys.len() <= 3 || page.cursor.is_none(),
            "a page respects the limit unless it is the only page"
        );
        seen.extend(
            page.keys
                .into_iter()
                .filter(|k| k.starts_with("conformance:list")),
        );
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    written.sort();
    assert_eq!(seen, written, "list-keys returns every key");
    b.delete_many(written).await.unwrap();
    b.delete(&p("n")).await.unwrap();
    b.delete(&p("text")).await.unwrap();
}

/// Runs the shared watch checks against `store`, in bucket `identifier`: a watch reports
/// writes (`set`, `increment`, `set-many`) with the value written and deletions (`delete`,
/// `delete-many`) of the watched keys, in order, and nothing about other keys. Keys it
/// writes start with `conformance:watch`.
#[allow(clippy::unwrap_used)]
pub async fn check_watch(store: &dyn KeyValue, identifier: &str) {
    use crate::watch::Change;
    use std::collections::BTreeSet;
    use std::time::Duration;

    let b = store.open(identifier).await.expect("open");
    let (w1, w2, other) = (
        "conformance:watch1".to_owned(),
        "conformance:watch2".to_owned(),
        "conformance:watch-other".to_owned(),
    );
    b.delete_many(vec![w1.clone(), w2.clone(), other.clone()])
        .await
        .expect("clean up");
    let mut changes = store
        .watch(BTreeSet::from([w1.clone(), w2.clone()]), 64, "conformance")
        .await
        .expect("a running backend can watch");
    // Generous: a deadline for a change that must come, never a measurement.
    let mut next = async || {
        let change = tokio::time::timeout(Duration::from_secs(20), changes.next_change())
            .await
            .expect("a change within 20 s")
            .expect("the watch goes on");
        assert!(
            change.bucket() == identifier || change.bucket().is_empty(),
            "a change names the bucket it happened in: {change:?}"
        );
        match change {
            Change::Set { key, value, .. } => (key, Some(value)),
            Change::Delete { key, .. } => (key, None),
        }
    };

    b.set(&w1, b"one".to_vec()).await.unwrap();
    assert_eq!(
        next().await,
        (w1.clone(), Some(b"one".to_vec())),
        "a set is reported with its value"
    );
    b.set(&other, b"x".to_vec()).await.unwrap();
    b.set(&w2, b"two".to_vec()).await.unwrap();
    assert_eq!(
        next().await,
        (w2.clone(), Some(b"two".to_vec())),
        "keys that are not watched are not reported"
    );
    b.delete(&w1).await.unwrap();
    assert_eq!(next().await, (w1.clone(), None), "a delete is reported");
    b.increment(&w1, 5).await.unwrap();
    assert_eq!(
        next().await,
        (w1.clone(), Some(b"5".to_vec())),
        "an increment is a write of the new counter"
    );
    b.set_many(vec![
        (w1.clone(), b"a".to_vec()),
        (w2.clone(), b"b".to_vec()),
    ])
    .await
    .unwrap();
    let mut got = vec![next().await, next().await];
    got.sort();
    assert_eq!(
        got,
        vec![
            (w1.clone(), Some(b"a".to_vec())),
            (w2.clone(), Some(b"b".to_vec()))
        ],
        "set-many reports each key"
    );
    b.delete_many(vec![w1.clone(), w2.clone()]).await.unwrap();
    let mut got = vec![next().await, next().await];
    got.sort();
    assert_eq!(
        got,
        vec![(w1.clone(), None), (w2.clone(), None)],
        "delete-many reports each key"
    );
    b.delete(&other).await.unwrap();
}
