//! Conditions in the Kubernetes convention, set as apimachinery's `meta.SetStatusCondition`
//! does: one condition per type, `lastTransitionTime` moving only when the status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::{Condition, DeviceCondition};

/// Sets the condition `type_` in `conditions` to `status` (`True` or `False`), `reason` and
/// `message`: added at the end with `now` as its transition time if there is none of that type,
/// otherwise updated in place, its `lastTransitionTime` set to `now` only when its status
/// changes. Returns whether anything changed.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: Time,
) -> bool {
    let status = if status { "True" } else { "False" };
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) else {
        conditions.push(Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: now,
            observed_generation: None,
        });
        return true;
    };
    let before = existing.clone();
    if existing.status != status {
        existing.status = status.into();
        existing.last_transition_time = now;
    }
    existing.reason = reason.into();
    existing.message = message.into();
    *existing != before
}

/// What a Device's condition (node-style, with a heartbeat) is to say.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceConditionUpdate<'a> {
    /// `True`, `False` or `Unknown`.
    pub status: &'a str,
    /// Why, in one CamelCase word.
    pub reason: &'a str,
    /// Why, for people.
    pub message: &'a str,
    /// The heartbeat to record; `None` keeps the one there is.
    pub heartbeat: Option<Time>,
}

/// Sets a Device's condition `type_` as [`set`] does (as the kubelet sets a Node's):
/// `lastTransitionTime` moves to `now` only when the status changes (or the condition is new);
/// the heartbeat is `update.heartbeat` when given. Returns whether anything changed.
pub fn set_device(
    conditions: &mut Vec<DeviceCondition>,
    type_: &str,
    update: DeviceConditionUpdate<'_>,
    now: Time,
) -> bool {
    let index = match conditions.iter().position(|c| c.type_ == type_) {
        Some(index) => index,
        None => {
            conditions.push(DeviceCondition {
                type_: type_.into(),
                status: String::new(),
                last_heartbeat_time: None,
                last_transition_time: None,
                reason: None,
                message: None,
            });
            conditions.len() - 1
        }
    };
    let condition = &mut conditions[index];
    let before = condition.clone();
    if condition.status != update.status || condition.last_transition_time.is_none() {
        condition.status = update.status.into();
        condition.last_transition_time = Some(now);
    }
    if let Some(heartbeat) = update.heartbeat {
        condition.last_heartbeat_time = Some(heartbeat);
    }
    condition.reason = Some(update.reason.into());
    condition.message = Some(update.message.into());
    *condition != before
}

/// Removes the condition `type_`; returns whether there was one.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The condition `type_`, if there is one.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_condition_moves_its_transition_only_when_its_status_does() {
        let reporting = |heartbeat| DeviceConditionUpdate {
            status: "True",
            reason: "DeviceReporting",
            message: "reports",
            heartbeat: Some(heartbeat),
        };
        let mut conditions = Vec::new();
        assert!(set_device(
            &mut conditions,
            "Ready",
            reporting(at(10)),
            at(10)
        ));
        assert_eq!(conditions[0].last_transition_time, Some(at(10)));
        // A heartbeat: the transition stays.
        assert!(set_device(
            &mut conditions,
            "Ready",
            reporting(at(20)),
            at(20)
        ));
        assert_eq!(conditions[0].last_heartbeat_time, Some(at(20)));
        assert_eq!(conditions[0].last_transition_time, Some(at(10)));
        // Silent: Unknown from now, the last heartbeat kept.
        let silent = DeviceConditionUpdate {
            status: "Unknown",
            reason: "DeviceStoppedReporting",
            message: "silent",
            heartbeat: None,
        };
        assert!(set_device(
            &mut conditions,
            "Ready",
            silent.clone(),
            at(400)
        ));
        assert_eq!(conditions[0].status, "Unknown");
        assert_eq!(conditions[0].last_heartbeat_time, Some(at(20)));
        assert_eq!(conditions[0].last_transition_time, Some(at(400)));
        assert!(!set_device(&mut conditions, "Ready", silent, at(500)));
        assert_eq!(conditions.len(), 1);
    }

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(second).unwrap())
    }

    #[test]
    fn a_new_type_is_added_at_the_end_with_now_as_its_transition() {
        let mut conditions = Vec::new();
        assert!(set(&mut conditions, "Available", true, "Up", "up", at(10)));
        assert!(set(
            &mut conditions,
            "Progressing",
            false,
            "Stuck",
            "no",
            at(11)
        ));
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Available", "Progressing"]);
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[1].status, "False");
        assert_eq!(conditions[1].last_transition_time, at(11));
        assert_eq!(conditions[1].observed_generation, None);
    }

    #[test]
    fn the_transition_time_stays_while_the_status_does_not_change() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            "Scheduled",
            false,
            "Unschedulable",
            "0/1",
            at(10),
        );
        // Same status, new reason and message: updated, transition time kept.
        assert!(set(
            &mut conditions,
            "Scheduled",
            false,
            "Unschedulable",
            "0/2",
            at(20)
        ));
        assert_eq!(conditions[0].message, "0/2");
        assert_eq!(conditions[0].last_transition_time, at(10));
        // Nothing new: no change.
        assert!(!set(
            &mut conditions,
            "Scheduled",
            false,
            "Unschedulable",
            "0/2",
            at(30)
        ));
        assert_eq!(conditions[0].last_transition_time, at(10));
        // The status flips: the transition time moves.
        assert!(set(
            &mut conditions,
            "Scheduled",
            true,
            "Scheduled",
            "bound",
            at(40)
        ));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].reason, "Scheduled");
        assert_eq!(conditions[0].last_transition_time, at(40));
    }

    #[test]
    fn other_types_keep_their_place_and_remove_drops_one_type() {
        let mut conditions = Vec::new();
        set(&mut conditions, "A", true, "R", "m", at(1));
        set(&mut conditions, "B", true, "R", "m", at(1));
        set(&mut conditions, "C", true, "R", "m", at(1));
        set(&mut conditions, "A", false, "R2", "m2", at(2));
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["A", "B", "C"]);
        assert!(remove(&mut conditions, "B"));
        assert!(!remove(&mut conditions, "B"));
        assert_eq!(
            find(&conditions, "C").map(|c| c.status.as_str()),
            Some("True")
        );
        assert!(find(&conditions, "B").is_none());
    }
}
