//! docs/resources.md's coverage tables against the composer: each field said to be set is in
//! the configuration of a fixture using every mapping (`testdata/everything.yaml`), composed
//! for a device that decrypts and for one that does not yet; each field said not to be exposed
//! is in neither; and every field sent has its row.

use std::collections::BTreeSet;

use serde_json::Value;

use super::fixture::{Objects, ecdh_status};
use super::tests::compose_for;

const DOC: &str = include_str!("../../../../docs/resources.md");
const EVERYTHING: &str = include_str!("testdata/everything.yaml");

/// Where a message's objects are in a configuration's JSON.
fn objects_of<'a>(config: &'a Value, message: &str) -> Vec<&'a Value> {
    let list = match message {
        "EdgeDevConfig" => return vec![config],
        "AppInstanceConfig" => "apps",
        "NetworkConfig" => "networks",
        "NetworkInstanceConfig" => "networkInstances",
        "DatastoreConfig" => "datastores",
        "ContentTree" => "contentInfo",
        "Volume" => "volumes",
        other => panic!("the coverage tables name an unknown message {other}"),
    };
    config[list]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The rows of the coverage tables: (message, field, whether it is said to be set).
fn rows() -> Vec<(String, String, bool)> {
    let section = DOC
        .split("## Coverage: every field of the configuration")
        .nth(1)
        .expect("docs/resources.md has its coverage section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `")?.splitn(2, "` | ");
            let (message, field) = cells.next()?.split_once('.')?;
            let said = cells.next()?;
            Some((
                message.into(),
                field.into(),
                !said.starts_with("**not exposed"),
            ))
        })
        .collect()
}

/// The fixture's configurations: for a device that has uploaded its ECDH certificate, and for
/// one that has not.
fn configurations() -> [Value; 2] {
    [true, false].map(|sealed| {
        let mut objects = Objects::default();
        let yaml = if sealed {
            EVERYTHING.replacen(
                "spec:\n  eve-os-version",
                &format!("{}spec:\n  eve-os-version", ecdh_status()),
                1,
            )
        } else {
            EVERYTHING.to_string()
        };
        objects.add_yaml(&yaml);
        let config = compose_for(&objects, "dev1").config;
        serde_json::to_value(&config).expect("JSON")
    })
}

#[test]
fn every_field_the_docs_say_is_set_is_sent_and_no_other() {
    let rows = rows();
    assert!(
        rows.len() > 100,
        "the coverage tables read: {} rows",
        rows.len()
    );
    let configs = configurations();
    let present = |message: &str, field: &str| {
        configs
            .iter()
            .flat_map(|c| objects_of(c, message))
            .any(|o| o.get(field).is_some_and(|v| !v.is_null()))
    };
    let mut wrong = Vec::new();
    for (message, field, set) in &rows {
        if present(message, field) != *set {
            wrong.push(format!(
                "{message}.{field}: docs say {}, the fixture's configuration {}",
                if *set { "set" } else { "not exposed" },
                if *set { "lacks it" } else { "has it" }
            ));
        }
    }
    // Every field sent has its row.
    let documented: BTreeSet<(String, String)> = rows
        .iter()
        .map(|(m, f, _)| (m.clone(), f.clone()))
        .collect();
    for message in [
        "EdgeDevConfig",
        "AppInstanceConfig",
        "NetworkConfig",
        "NetworkInstanceConfig",
        "DatastoreConfig",
        "ContentTree",
        "Volume",
    ] {
        for config in &configs {
            for object in objects_of(config, message) {
                for field in object.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !documented.contains(&(message.to_string(), field.clone())) {
                        wrong.push(format!(
                            "{message}.{field}: sent, and not in the coverage tables"
                        ));
                    }
                }
            }
        }
    }
    wrong.dedup();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
