//! Device models: the ConfigMap `adamant-device-models` of a namespace, each key a model, its
//! value a kind of device's physical IO as EVE's `PhysicalIO` messages in proto3 JSON (YAML
//! welcome); a Device names its model with the annotation `eve.lfedge.org/model`. Applications
//! are given adapters by their assignment groups (`assigngrp`). One ConfigMap of a fixed name,
//! so that the controller reads it by name, as it reads the global options.

use std::collections::BTreeMap;

use serde_json::Value;

/// The name of a namespace's ConfigMap of device models.
pub const MODELS: &str = "adamant-device-models";

/// Why a model does not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// No such key.
    #[error("ConfigMap {MODELS} has no key {0}: list the model's physical IO under it")]
    Missing(String),
    /// Not a YAML list of objects.
    #[error("model {model} is not a YAML list of PhysicalIO objects: {why}")]
    Syntax {
        /// The model.
        model: String,
        /// What the parser says.
        why: String,
    },
    /// An entry lacks a field EVE needs.
    #[error(
        "model {model}: entry {index} has no {field}: each entry needs ptype, phylabel and logicallabel"
    )]
    Field {
        /// The model.
        model: String,
        /// The entry.
        index: usize,
        /// The field.
        field: &'static str,
    },
}

/// The physical IO of model `name` in a models ConfigMap's data, as JSON objects (each a
/// `PhysicalIO`).
pub fn read(data: &BTreeMap<String, String>, name: &str) -> Result<Vec<Value>, ModelError> {
    let text = data
        .get(name)
        .ok_or_else(|| ModelError::Missing(name.to_string()))?;
    let syntax = |why: String| ModelError::Syntax {
        model: name.to_string(),
        why,
    };
    let entries: Vec<Value> = serde_yaml::from_str(text).map_err(|e| syntax(e.to_string()))?;
    for (index, entry) in entries.iter().enumerate() {
        if !entry.is_object() {
            return Err(syntax(format!("entry {index} is not an object")));
        }
        for field in ["ptype", "phylabel", "logicallabel"] {
            if entry[field].as_str().is_none_or(str::is_empty) {
                return Err(ModelError::Field {
                    model: name.to_string(),
                    index,
                    field,
                });
            }
        }
    }
    Ok(entries)
}

/// The assignment groups of a model's physical IO, each with the type of its first member.
pub fn groups(entries: &[Value]) -> BTreeMap<String, String> {
    let mut groups = BTreeMap::new();
    for entry in entries {
        if let (Some(group), Some(ptype)) = (entry["assigngrp"].as_str(), entry["ptype"].as_str())
            && !group.is_empty()
        {
            groups
                .entry(group.to_string())
                .or_insert_with(|| ptype.to_string());
        }
    }
    groups
}

/// The assignment groups an Application asks for (its annotation `eve.lfedge.org/adapters`).
pub fn wanted(annotations: &BTreeMap<String, String>) -> Vec<String> {
    annotations
        .get(crate::annotations::ADAPTERS)
        .map(|v| crate::annotations::list(v))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(text: &str) -> BTreeMap<String, String> {
        [("nuc".to_string(), text.to_string())].into()
    }

    #[test]
    fn a_model_reads_and_names_its_groups() {
        let entries = read(
            &data(
                "- {ptype: PhyIoNetEth, phylabel: eth0, logicallabel: eth0, assigngrp: eth0, phyaddrs: {Ifname: eth0}}
- {ptype: PhyIoUSB, phylabel: USB1, logicallabel: usb1, assigngrp: USB, phyaddrs: {UsbAddr: '1:1'}}
- {ptype: PhyIoUSB, phylabel: USB2, logicallabel: usb2, assigngrp: USB}
- {ptype: PhyIoCOM, phylabel: COM1, logicallabel: com1}
",
            ),
            "nuc",
        )
        .expect("a model");
        assert_eq!(entries.len(), 4);
        let groups: Vec<(String, String)> = groups(&entries).into_iter().collect();
        assert_eq!(
            groups,
            [("USB", "PhyIoUSB"), ("eth0", "PhyIoNetEth")]
                .map(|(g, t)| (g.to_string(), t.to_string()))
        );
    }

    #[test]
    fn a_broken_model_says_what_to_fix() {
        assert_eq!(
            read(&BTreeMap::new(), "nuc"),
            Err(ModelError::Missing("nuc".into()))
        );
        assert!(matches!(
            read(&data("{a: b}"), "nuc"),
            Err(ModelError::Syntax { .. })
        ));
        assert_eq!(
            read(&data("- {ptype: PhyIoUSB, phylabel: USB1}"), "nuc"),
            Err(ModelError::Field {
                model: "nuc".into(),
                index: 0,
                field: "logicallabel"
            })
        );
    }
}
