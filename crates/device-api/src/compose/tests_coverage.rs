//! docs/resources.md's coverage and mapping tables against the composer: each field said to be
//! set is in the configuration of a fixture using every mapping (`testdata/everything.yaml`),
//! composed for a device that decrypts and for one that does not yet; each field said not to be
//! exposed is in neither; every field sent has its row; and every row of the Application, data
//! store and Device annotation tables names a field that is sent.

use std::collections::BTreeSet;

use serde_json::Value;

use super::fixture::{Objects, ecdh_status};
use super::tests::compose_for;

/// docs/resources.md, read once.
fn doc() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/resources.md"),
        )
        .expect("docs/resources.md")
    })
}
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
    let section = doc()
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

/// The rows of the mapping table under `heading` (up to the next heading): each row's last
/// column. A row whose last column starts with `none` or `from` maps to nothing sent.
fn mapping_rows(heading: &str) -> Vec<String> {
    let section = doc()
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("docs/resources.md has {heading}"));
    let section = section.split("\n#").next().unwrap_or_default();
    section
        .lines()
        .filter(|l| l.starts_with("| `") || l.starts_with("| annotation `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            cells.last().map(|c| c.trim().to_string())
        })
        .collect()
}

/// Whether `path` (`a.b`, `a[].b`, `a[0].b`, proto or JSON names) is in `value`.
fn has_path(value: &Value, path: &str) -> bool {
    let camel = |name: &str| {
        let mut out = String::new();
        let mut upper = false;
        for c in name.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    };
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let (name, indexed) = match head.split_once('[') {
        Some((name, _)) => (name, true),
        None => (head, false),
    };
    let Some(found) = value.get(name).or_else(|| value.get(camel(name))) else {
        return false;
    };
    let next: Vec<&Value> = if indexed {
        found
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    } else {
        vec![found]
    };
    match rest {
        None => next.iter().any(|v| !v.is_null()),
        Some(rest) => next.iter().any(|v| has_path(v, rest)),
    }
}

/// Each row of the Application, data store and Device annotation tables that names where it
/// goes names a field the fixture's configuration carries: a mapping documented without code
/// fails here.
#[test]
fn every_mapping_row_names_a_field_that_is_sent() {
    let configs = configurations();
    let tables = [
        ("## Application\n", "apps"),
        (
            "## Data stores: StorageClass with `provisioner: eve`",
            "datastores",
        ),
        ("### Device annotations", ""),
    ];
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (heading, list) in tables {
        for cell in mapping_rows(heading) {
            if cell.starts_with("none") || cell.starts_with("from") {
                continue;
            }
            let Some(field) = cell.split('`').nth(1) else {
                continue;
            };
            let field = field.trim_start_matches("AppInstanceConfig.");
            checked += 1;
            let sent = configs.iter().any(|config| {
                if list.is_empty() {
                    has_path(config, field)
                } else {
                    config[list]
                        .as_array()
                        .is_some_and(|items| items.iter().any(|i| has_path(i, field)))
                }
            });
            if !sent {
                wrong.push(format!("{heading}: `{field}` ({cell})"));
            }
        }
    }
    assert!(checked >= 20, "the mapping tables read: {checked} rows");
    assert!(
        wrong.is_empty(),
        "documented, not sent:\n{}",
        wrong.join("\n")
    );
}
