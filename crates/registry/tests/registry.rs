//! The generic store's lifecycle rules, on the in-memory backend.

use std::sync::Arc;

use apimachinery::{FieldError, fields, labels};
use expect_test::{Expect, expect};
use registry::{
    ApiError, DefaultStrategy, ListOptions, Registry, Resource, Strategy, WriteOptions,
};
use serde_json::{Value, json};
use storage::MemoryStore;

fn widgets() -> Resource {
    Resource {
        group: "example.com".into(),
        resource: "widgets".into(),
        kind: "Widget".into(),
        namespaced: true,
        strategy: Arc::new(DefaultStrategy),
    }
}

fn registry() -> Registry {
    Registry::new(Arc::new(MemoryStore::new()))
}

fn widget(name: &str) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 1}})
}

/// An error as the API shows it.
#[track_caller]
fn check_err(result: Result<Value, ApiError>, expected: Expect) {
    expected.assert_eq(&result.expect_err("expected an error").to_string());
}

fn rv(object: &Value) -> i64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

const NONE: WriteOptions = WriteOptions {
    dry_run: false,
    admission: None,
};

#[tokio::test]
async fn create_fills_system_metadata_and_refuses_duplicates() {
    let r = registry();
    let created = r
        .create(&widgets(), "default", widget("a"), &NONE)
        .await
        .unwrap();
    let meta = &created["metadata"];
    assert_eq!(meta["namespace"], "default");
    assert_eq!(meta["generation"], 1);
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36);
    assert!(meta["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.get(&widgets(), "default", "a").await.unwrap(), created);
    check_err(
        r.create(&widgets(), "default", widget("a"), &NONE).await,
        expect![[r#"widgets.example.com "a" already exists"#]],
    );
    check_err(
        r.get(&widgets(), "default", "b").await,
        expect![[r#"widgets.example.com "b" not found"#]],
    );
    check_err(
        r.get(&widgets(), "other", "a").await,
        expect![[r#"widgets.example.com "a" not found"#]],
    );
}

#[tokio::test]
async fn create_validates_metadata_with_field_causes() {
    let r = registry();
    let mut bad = widget("Bad_Name");
    bad["metadata"]["labels"] = json!({"ok": "fine", "bad key": "x"});
    check_err(
        r.create(&widgets(), "default", bad, &NONE).await,
        expect![[
            r#"Widget.example.com "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')]"#
        ]],
    );
    check_err(
        r.create(&widgets(), "default", json!({"metadata": {}}), &NONE)
            .await,
        expect![[
            r#"Widget.example.com "" is invalid: metadata.name: Required value: name or generateName is required"#
        ]],
    );
    let mut elsewhere = widget("a");
    elsewhere["metadata"]["namespace"] = json!("other");
    check_err(
        r.create(&widgets(), "default", elsewhere, &NONE).await,
        expect![
            "the namespace of the provided object does not match the namespace sent on the request"
        ],
    );
}

#[tokio::test]
async fn generate_name_makes_a_fresh_name() {
    let r = registry();
    let object = json!({"metadata": {"generateName": "w-"}});
    let a = r
        .create(&widgets(), "default", object.clone(), &NONE)
        .await
        .unwrap();
    let b = r
        .create(&widgets(), "default", object, &NONE)
        .await
        .unwrap();
    let name = a["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("w-") && name.len() == 7, "{name}");
    assert_ne!(a["metadata"]["name"], b["metadata"]["name"]);
}

#[tokio::test]
async fn updates_are_optimistic_and_no_ops_store_nothing() {
    let r = registry();
    let created = r
        .create(&widgets(), "default", widget("a"), &NONE)
        .await
        .unwrap();

    // Same content: nothing written, same resource version.
    let same = r
        .update(&widgets(), "default", "a", created.clone(), &NONE)
        .await
        .unwrap();
    assert_eq!(rv(&same), rv(&created));

    // A label change: new version, same generation.
    let mut labelled = created.clone();
    labelled["metadata"]["labels"] = json!({"tier": "web"});
    let labelled = r
        .update(&widgets(), "default", "a", labelled, &NONE)
        .await
        .unwrap();
    assert!(rv(&labelled) > rv(&created));
    assert_eq!(labelled["metadata"]["generation"], 1);

    // A spec change: generation goes up; system fields stay.
    let mut resized = labelled.clone();
    resized["spec"]["size"] = json!(2);
    resized["metadata"]["uid"] = json!("forged");
    let resized = r
        .update(&widgets(), "default", "a", resized, &NONE)
        .await
        .unwrap();
    assert_eq!(resized["metadata"]["generation"], 2);
    assert_eq!(resized["metadata"]["uid"], created["metadata"]["uid"]);

    // A stale version: 409, nothing changed.
    check_err(
        r.update(&widgets(), "default", "a", labelled, &NONE).await,
        expect![[
            r#"Operation cannot be fulfilled on widgets.example.com "a": the object has been modified; please apply your changes to the latest version and try again"#
        ]],
    );
    // No version: applies to the current one.
    let mut unconditional = widget("a");
    unconditional["spec"]["size"] = json!(3);
    let latest = r
        .update(&widgets(), "default", "a", unconditional, &NONE)
        .await
        .unwrap();
    assert_eq!(latest["metadata"]["generation"], 3);

    check_err(
        r.update(&widgets(), "default", "b", widget("a"), &NONE)
            .await,
        expect!["the name of the object (a) does not match the name on the URL (b)"],
    );
    check_err(
        r.update(&widgets(), "default", "zz", widget("zz"), &NONE)
            .await,
        expect![[r#"widgets.example.com "zz" not found"#]],
    );
}

#[tokio::test]
async fn dry_run_checks_everything_and_stores_nothing() {
    let r = registry();
    let dry = WriteOptions {
        dry_run: true,
        admission: None,
    };
    let preview = r
        .create(&widgets(), "default", widget("a"), &dry)
        .await
        .unwrap();
    assert_eq!(preview["metadata"]["name"], "a");
    check_err(
        r.get(&widgets(), "default", "a").await,
        expect![[r#"widgets.example.com "a" not found"#]],
    );
    let created = r
        .create(&widgets(), "default", widget("a"), &NONE)
        .await
        .unwrap();
    check_err(
        r.create(&widgets(), "default", widget("a"), &dry).await,
        expect![[r#"widgets.example.com "a" already exists"#]],
    );
    r.delete(&widgets(), "default", "a", None, &dry)
        .await
        .unwrap();
    assert_eq!(r.get(&widgets(), "default", "a").await.unwrap(), created);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let r = registry();
    let mut held = widget("a");
    held["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    let created = r.create(&widgets(), "default", held, &NONE).await.unwrap();
    check_err(
        r.delete(&widgets(), "default", "a", Some(rv(&created) - 1), &NONE)
            .await,
        expect![[
            r#"Operation cannot be fulfilled on widgets.example.com "a": the object has been modified; please apply your changes to the latest version and try again"#
        ]],
    );
    let marked = r
        .delete(&widgets(), "default", "a", None, &NONE)
        .await
        .unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(r.get(&widgets(), "default", "a").await.unwrap(), marked);
    let mut released = marked.clone();
    released["metadata"]["finalizers"] = json!([]);
    r.update(&widgets(), "default", "a", released, &NONE)
        .await
        .unwrap();
    check_err(
        r.get(&widgets(), "default", "a").await,
        expect![[r#"widgets.example.com "a" not found"#]],
    );
}

struct Colored;

impl Strategy for Colored {
    fn selectable_fields(&self) -> Vec<String> {
        vec!["spec.color".into()]
    }

    fn field(&self, object: &Value, field: &str) -> Option<String> {
        (field == "spec.color").then(|| object["spec"]["color"].as_str().unwrap_or("").to_string())
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        match object["spec"]["color"].as_str() {
            Some("red" | "blue") => Vec::new(),
            _ => vec![FieldError::invalid(
                "spec.color",
                object["spec"]["color"].to_string(),
                "must be red or blue",
            )],
        }
    }
}

#[tokio::test]
async fn lists_filter_and_page_through_one_snapshot() {
    let r = registry();
    let colored = Resource {
        strategy: Arc::new(Colored),
        ..widgets()
    };
    for (i, ns) in ["a", "b"].iter().enumerate() {
        for n in 0..5 {
            let color = if n % 2 == 0 { "red" } else { "blue" };
            let object = json!({"metadata": {"name": format!("w{n}"), "labels": {"n": n.to_string()}}, "spec": {"color": color}});
            r.create(&colored, ns, object, &NONE)
                .await
                .unwrap_or_else(|e| panic!("{i}: {e}"));
        }
    }
    let names = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["metadata"]["namespace"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let list = |namespace: Option<&'static str>, options: ListOptions| {
        let r = r.clone();
        let colored = colored.clone();
        async move { r.list(&colored, namespace, &options).await }
    };

    let all = list(None, ListOptions::default()).await.unwrap();
    assert_eq!(all.items.len(), 10);
    let red_in_a = ListOptions {
        fields: fields::Selector::parse("spec.color=red").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        names(&list(Some("a"), red_in_a).await.unwrap().items),
        ["a/w0", "a/w2", "a/w4"]
    );
    let labelled = ListOptions {
        labels: labels::Selector::parse("n in (1,3),n!=3").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        names(&list(None, labelled).await.unwrap().items),
        ["a/w1", "b/w1"]
    );
    let unknown = ListOptions {
        fields: fields::Selector::parse("spec.size=1").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        list(None, unknown).await.unwrap_err().to_string(),
        r#""spec.size" is not a known field selector: only "metadata.name", "metadata.namespace", "spec.color""#
    );

    // Pages of 3 reds, with a write between the pages: the pages stay on their snapshot.
    let mut options = ListOptions {
        limit: 2,
        fields: fields::Selector::parse("spec.color=red").unwrap(),
        ..Default::default()
    };
    let first = list(None, options.clone()).await.unwrap();
    assert_eq!(names(&first.items), ["a/w0", "a/w2"]);
    r.delete(&colored, "b", "w0", None, &NONE).await.unwrap();
    let mut seen = names(&first.items);
    let mut token = first.continue_token;
    while let Some(t) = token {
        options.continue_token = Some(t);
        let page = list(None, options.clone()).await.unwrap();
        assert_eq!(page.resource_version, first.resource_version);
        seen.extend(names(&page.items));
        token = page.continue_token;
    }
    assert_eq!(seen, ["a/w0", "a/w2", "a/w4", "b/w0", "b/w2", "b/w4"]);

    options.continue_token = Some("garbage".into());
    assert_eq!(
        list(None, options).await.unwrap_err().to_string(),
        r#"continue key is not valid: "garbage""#
    );

    let invalid = json!({"metadata": {"name": "w9"}, "spec": {"color": "green"}});
    check_err(
        r.create(&colored, "a", invalid, &NONE).await,
        expect![[
            r#"Widget.example.com "w9" is invalid: spec.color: Invalid value: "\"green\"": must be red or blue"#
        ]],
    );
}

/// Each watch event as `TYPE namespace/name rv` (or the error), in order.
async fn take_events(
    stream: impl futures::Stream<Item = registry::WatchEvent> + Unpin,
    n: usize,
) -> Vec<String> {
    use futures::StreamExt;
    use registry::WatchEvent;
    let events: Vec<WatchEvent> =
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.take(n).collect())
            .await
            .expect("the watch delivered too little");
    events
        .iter()
        .map(|e| {
            let show = |kind: &str, o: &Value| {
                format!(
                    "{kind} {}/{} labels={}",
                    o["metadata"]["namespace"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or(""),
                    o["metadata"]["labels"]
                )
            };
            match e {
                WatchEvent::Added(o) => show("ADDED", o),
                WatchEvent::Modified(o) => show("MODIFIED", o),
                WatchEvent::Deleted(o) => show("DELETED", o),
                WatchEvent::Bookmark(rv) => format!("BOOKMARK {rv}"),
                WatchEvent::Error(e) => format!("ERROR {e}"),
            }
        })
        .collect()
}

#[tokio::test]
async fn watches_translate_changes_and_selector_transitions() {
    use registry::Start;
    let store = Arc::new(MemoryStore::new());
    let r = Registry::new(store.clone());
    let w = widgets();
    let existing = r.create(&w, "default", widget("a"), &NONE).await.unwrap();
    r.create(&w, "other", widget("b"), &NONE).await.unwrap();

    // From now: the current objects first, then the changes.
    let web = ListOptions {
        labels: labels::Selector::parse("tier=web").unwrap(),
        ..Default::default()
    };
    let everything = r
        .watch(&w, None, &ListOptions::default(), Start::Now)
        .await
        .unwrap();
    let in_default = r
        .watch(&w, Some("default"), &web, Start::After(rv(&existing)))
        .await
        .unwrap();

    let mut a = existing.clone();
    a["metadata"]["labels"] = json!({"tier": "web"});
    let a = r.update(&w, "default", "a", a, &NONE).await.unwrap();
    let mut a2 = a.clone();
    a2["spec"]["size"] = json!(5);
    let a2 = r.update(&w, "default", "a", a2, &NONE).await.unwrap();
    let mut a3 = a2.clone();
    a3["metadata"]["labels"] = json!({"tier": "db"});
    r.update(&w, "default", "a", a3, &NONE).await.unwrap();
    let mut a4 = widget("a");
    a4["metadata"]["labels"] = json!({"tier": "web"});
    r.update(&w, "default", "a", a4, &NONE).await.unwrap();
    r.create(&w, "default", widget("c"), &NONE).await.unwrap();
    r.delete(&w, "default", "a", None, &NONE).await.unwrap();

    expect![[r#"
        [
            "ADDED default/a labels=null",
            "ADDED other/b labels=null",
            "MODIFIED default/a labels={\"tier\":\"web\"}",
            "MODIFIED default/a labels={\"tier\":\"web\"}",
            "MODIFIED default/a labels={\"tier\":\"db\"}",
            "MODIFIED default/a labels={\"tier\":\"web\"}",
            "ADDED default/c labels=null",
            "DELETED default/a labels={\"tier\":\"web\"}",
        ]
    "#]]
    .assert_debug_eq(&take_events(Box::pin(everything), 8).await);
    expect![[r#"
        [
            "ADDED default/a labels={\"tier\":\"web\"}",
            "MODIFIED default/a labels={\"tier\":\"web\"}",
            "DELETED default/a labels={\"tier\":\"web\"}",
            "ADDED default/a labels={\"tier\":\"web\"}",
            "DELETED default/a labels={\"tier\":\"web\"}",
        ]
    "#]]
    .assert_debug_eq(&take_events(Box::pin(in_default), 5).await);

    // A watch from a compacted version: 410, and nothing after it.
    use storage::Store;
    let current = store.current_revision().await.unwrap();
    store.compact(current).await.unwrap();
    let old = r
        .watch(
            &w,
            None,
            &ListOptions::default(),
            Start::After(rv(&existing)),
        )
        .await
        .unwrap();
    let events = take_events(Box::pin(old), 2).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].starts_with("ERROR too old resource version"),
        "{events:?}"
    );
}
