//! Device models: a ConfigMap (labelled `eve.lfedge.org/device-model`) whose key `physicalIO`
//! lists a kind of device's physical IO as EVE's `PhysicalIO` messages in proto3 JSON (YAML
//! welcome), what a Device names with its annotation `eve.lfedge.org/model`. Applications are
//! given adapters by their assignment groups (`assigngrp`).

use std::collections::BTreeMap;

use serde_json::Value;

/// The ConfigMap key of a model's physical IO.
pub const PHYSICAL_IO: &str = "physicalIO";

/// Why a model does not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// No `physicalIO` key.
    #[error("it has no key {PHYSICAL_IO}: list the device's physical IO there")]
    Missing,
    /// Not a YAML list of objects.
    #[error("{PHYSICAL_IO} is not a YAML list of PhysicalIO objects: {0}")]
    Syntax(String),
    /// An entry lacks a field EVE needs.
    #[error(
        "{PHYSICAL_IO}[{index}] has no {field}: each entry needs ptype, phylabel and logicallabel"
    )]
    Field {
        /// The entry.
        index: usize,
        /// The field.
        field: &'static str,
    },
}

/// The physical IO of a model's ConfigMap data, as JSON objects (each a `PhysicalIO`).
pub fn read(data: &BTreeMap<String, String>) -> Result<Vec<Value>, ModelError> {
    let text = data.get(PHYSICAL_IO).ok_or(ModelError::Missing)?;
    let entries: Vec<Value> =
        serde_yaml::from_str(text).map_err(|e| ModelError::Syntax(e.to_string()))?;
    for (index, entry) in entries.iter().enumerate() {
        if !entry.is_object() {
            return Err(ModelError::Syntax(format!(
                "entry {index} is not an object"
            )));
        }
        for field in ["ptype", "phylabel", "logicallabel"] {
            if entry[field].as_str().is_none_or(str::is_empty) {
                return Err(ModelError::Field { index, field });
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
        [(PHYSICAL_IO.to_string(), text.to_string())].into()
    }

    #[test]
    fn a_model_reads_and_names_its_groups() {
        let entries = read(&data(
            "- {ptype: PhyIoNetEth, phylabel: eth0, logicallabel: eth0, assigngrp: eth0, phyaddrs: {Ifname: eth0}}
- {ptype: PhyIoUSB, phylabel: USB1, logicallabel: usb1, assigngrp: USB, phyaddrs: {UsbAddr: '1:1'}}
- {ptype: PhyIoUSB, phylabel: USB2, logicallabel: usb2, assigngrp: USB}
- {ptype: PhyIoCOM, phylabel: COM1, logicallabel: com1}
",
        ))
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
        assert_eq!(read(&BTreeMap::new()), Err(ModelError::Missing));
        assert!(matches!(read(&data("{a: b}")), Err(ModelError::Syntax(_))));
        assert_eq!(
            read(&data("- {ptype: PhyIoUSB, phylabel: USB1}")),
            Err(ModelError::Field {
                index: 0,
                field: "logicallabel"
            })
        );
    }
}
