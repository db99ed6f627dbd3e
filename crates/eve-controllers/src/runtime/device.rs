//! The Device reconciler: gives a device its UUID (its object's uid) if it has none yet.

use std::sync::Arc;

use eve_model::{Device, DeviceStatus};
use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::context::{Ctx, Error};

pub(super) async fn reconcile(device: Arc<Device>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if device
        .status
        .as_ref()
        .and_then(|s| s.uuid.as_ref())
        .is_some()
    {
        return Ok(Action::await_change());
    }
    let status = DeviceStatus {
        uuid: device.uid(),
        ..DeviceStatus::default()
    };
    ctx.write_status::<Device, _>(
        &device.namespace().unwrap_or_default(),
        &device.name_any(),
        &status,
    )
    .await?;
    Ok(Action::await_change())
}
