//! Plugin documents on both backends: prefix scans in byte order, a call's
//! pending writes seen by its own reads, and isolation between plugins and orgs.

use devpulse::bus::commit::commit;
use devpulse::capabilities::writes::WriteSet;
use devpulse::store::documents::{self, Scope};
use devpulse_e2e::{Backend, ScratchDatabase, on_both_backends};
use serde_json::json;

fn scope(plugin: &str, org: &str) -> Scope {
    Scope { plugin: plugin.into(), org: org.into(), generation: 0 }
}

async fn scans_merge_pending_writes_in_byte_order(backend: Backend) {
    let Some(scratch) = ScratchDatabase::create(backend).await else {
        return;
    };
    let db = scratch.connect().await;
    let hello = scope("hello", "acme");
    let mut committed = WriteSet::default();
    for key in ["a/1", "a/2", "a/3", "a/Z", "a/é", "b/1"] {
        committed.put(key.into(), json!(key));
    }
    commit(&db, committed, &hello).await.unwrap();
    // Other plugins and orgs never show up.
    let mut elsewhere = WriteSet::default();
    elsewhere.put("a/9".into(), json!(0));
    commit(&db, elsewhere, &scope("hello", "other-org")).await.unwrap();
    elsewhere = WriteSet::default();
    elsewhere.put("a/8".into(), json!(0));
    commit(&db, elsewhere, &scope("other-plugin", "acme")).await.unwrap();

    let keys = |rows: Vec<(String, serde_json::Value)>| rows.into_iter().map(|(key, _)| key).collect::<Vec<_>>();
    let stored = documents::scan(&db, &hello, "a/", None, 100).await.unwrap();
    assert_eq!(keys(stored), ["a/1", "a/2", "a/3", "a/Z", "a/é"], "byte order on every backend");

    let mut call = WriteSet::default();
    call.put("a/25".into(), json!("new"));
    assert!(call.delete(&db, &hello, "a/3").await.unwrap());
    assert!(!call.delete(&db, &hello, "a/missing").await.unwrap());
    let seen = call.scan(&db, &hello, "a/", None, 3).await.unwrap();
    assert_eq!(keys(seen), ["a/1", "a/2", "a/25"]);
    let next = call.scan(&db, &hello, "a/", Some("a/25"), 3).await.unwrap();
    assert_eq!(keys(next), ["a/Z", "a/é"], "the deleted a/3 is skipped");
    assert_eq!(call.count(&db, &hello, "a/").await.unwrap(), 5);
    assert_eq!(call.get(&db, &hello, "a/3").await.unwrap(), None);
    assert_eq!(documents::count(&db, &hello, "a/").await.unwrap(), 5, "nothing is written before commit");

    commit(&db, call, &hello).await.unwrap();
    let stored = documents::scan(&db, &hello, "a/", None, 100).await.unwrap();
    assert_eq!(keys(stored), ["a/1", "a/2", "a/25", "a/Z", "a/é"]);
    assert_eq!(documents::get(&db, &hello, "a/25").await.unwrap(), Some(json!("new")));
    db.close().await.unwrap();
    scratch.drop_now().await;
}

on_both_backends!(scans_merge_pending_writes_in_byte_order);
