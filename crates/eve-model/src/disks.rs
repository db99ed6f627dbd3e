//! The annotation `eve.lfedge.org/disks`: how EVE arranges a device's disks, EVE's
//! `DisksConfig` in proto3 JSON or YAML. Read here by its shape, so that admission names what
//! is wrong; the device API turns it into the message.

use serde_json::Value;

/// The array types EVE knows.
pub const ARRAY_TYPES: &[&str] = &[
    "DISKS_ARRAY_TYPE_UNSPECIFIED",
    "DISKS_ARRAY_TYPE_RAID0",
    "DISKS_ARRAY_TYPE_RAID1",
    "DISKS_ARRAY_TYPE_RAID5",
    "DISKS_ARRAY_TYPE_RAID6",
];

/// What EVE may be told to do with a disk.
pub const DISK_CONFIGS: &[&str] = &[
    "DISK_CONFIG_TYPE_UNSPECIFIED",
    "DISK_CONFIG_TYPE_EVEOS",
    "DISK_CONFIG_TYPE_PERSIST",
    "DISK_CONFIG_TYPE_ZFS_ONLINE",
    "DISK_CONFIG_TYPE_ZFS_OFFLINE",
    "DISK_CONFIG_TYPE_APPDIRECT",
    "DISK_CONFIG_TYPE_UNUSED",
];

/// The annotation's value as JSON, or what is wrong with it (naming where).
pub fn read(text: &str) -> Result<Value, String> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| format!("not YAML or JSON: {e}"))?;
    check(&value, "")?;
    Ok(value)
}

/// The value of `object`'s field spelled `camel` (proto3 JSON) or `snake` (the proto's).
fn field<'a>(
    object: &'a serde_json::Map<String, Value>,
    camel: &str,
    snake: &str,
) -> Option<&'a Value> {
    object.get(camel).or_else(|| object.get(snake))
}

fn one_of(value: Option<&Value>, allowed: &[&str], at: &str) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(other) => Err(format!("{at}: {other} is none of {}", allowed.join(", "))),
    }
}

fn check(value: &Value, at: &str) -> Result<(), String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("{at}: a DisksConfig is an object (arrayType, disks, children)"))?;
    for key in object.keys() {
        if !["arrayType", "array_type", "disks", "children"].contains(&key.as_str()) {
            return Err(format!(
                "{at}{key}: unknown field (arrayType, disks, children)"
            ));
        }
    }
    one_of(
        field(object, "arrayType", "array_type"),
        ARRAY_TYPES,
        &format!("{at}arrayType"),
    )?;
    for (i, disk) in object
        .get("disks")
        .map(|d| d.as_array().ok_or(format!("{at}disks: a list")))
        .transpose()?
        .into_iter()
        .flatten()
        .enumerate()
    {
        let here = format!("{at}disks[{i}]");
        let disk = disk
            .as_object()
            .ok_or_else(|| format!("{here}: an object (disk, oldDisk, diskConfig)"))?;
        for key in disk.keys() {
            if !["disk", "oldDisk", "old_disk", "diskConfig", "disk_config"].contains(&key.as_str())
            {
                return Err(format!(
                    "{here}.{key}: unknown field (disk, oldDisk, diskConfig)"
                ));
            }
        }
        let described = field(disk, "disk", "disk")
            .and_then(Value::as_object)
            .is_some_and(|d| {
                ["name", "logicalName", "logical_name", "serial"]
                    .iter()
                    .any(|k| {
                        d.get(*k)
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty())
                    })
            });
        if !described {
            return Err(format!(
                "{here}.disk: name the disk by name (/dev/sdb), logicalName or serial"
            ));
        }
        one_of(
            field(disk, "diskConfig", "disk_config"),
            DISK_CONFIGS,
            &format!("{here}.diskConfig"),
        )?;
    }
    if let Some(children) = object.get("children") {
        let children = children
            .as_array()
            .ok_or(format!("{at}children: a list of DisksConfigs"))?;
        for (i, child) in children.iter().enumerate() {
            check(child, &format!("{at}children[{i}]."))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_read_and_errors_name_where() {
        assert!(read(
            "arrayType: DISKS_ARRAY_TYPE_RAID1\ndisks:\n- {disk: {name: /dev/sdb}, diskConfig: DISK_CONFIG_TYPE_ZFS_ONLINE}\n- {disk: {serial: S123}, disk_config: DISK_CONFIG_TYPE_ZFS_ONLINE}\n"
        )
        .is_ok());
        for (text, error) in [
            ("[1]", "a DisksConfig is an object"),
            ("raid: 1", "raid: unknown field"),
            ("arrayType: RAID9", "arrayType: \"RAID9\" is none of"),
            ("disks: [{disk: {}}]", "disks[0].disk: name the disk"),
            (
                "disks: [{disk: {name: a}, diskConfig: ON}]",
                "disks[0].diskConfig: \"ON\" is none of",
            ),
            (
                "children: [{disks: [{disk: {name: a}, extra: 1}]}]",
                "children[0].disks[0].extra: unknown field",
            ),
        ] {
            let got = read(text).expect_err(text);
            assert!(got.contains(error), "{text}: {got}");
        }
    }
}
