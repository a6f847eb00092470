//! Which status the registry shows for an instance: Eureka's server-side
//! `InstanceStatusOverrideRule` chain (`DownOrStartingRule`, then
//! `OverrideExistsRule`, then `LeaseExistsRule`, then the instance's own
//! status), as a pure function.

use cloud_protocol::eureka::InstanceStatus;

/// The status to show, given the status the client reports, the operator
/// override (if any), and the status the existing lease shows (pass `None`
/// for replicated requests, as Eureka does).
pub fn effective_status(
    reported: InstanceStatus,
    override_status: Option<InstanceStatus>,
    existing: Option<InstanceStatus>,
) -> InstanceStatus {
    use InstanceStatus::{OutOfService, Up};
    // DownOrStartingRule: a client that says it is not ready is believed.
    if !matches!(reported, Up | OutOfService) {
        return reported;
    }
    // OverrideExistsRule: an operator override wins over UP.
    if let Some(status) = override_status {
        return status;
    }
    // LeaseExistsRule: keep what the server already shows when it is UP or
    // OUT_OF_SERVICE.
    if let Some(status @ (Up | OutOfService)) = existing {
        return status;
    }
    reported
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstanceStatus::*;

    #[test]
    fn a_client_reporting_down_or_starting_is_believed_over_any_override() {
        assert_eq!(effective_status(Down, Some(OutOfService), Some(Up)), Down);
        assert_eq!(effective_status(Starting, Some(Up), None), Starting);
        assert_eq!(effective_status(Unknown, None, Some(Up)), Unknown);
    }

    #[test]
    fn an_override_wins_over_a_client_reporting_up() {
        assert_eq!(
            effective_status(Up, Some(OutOfService), Some(Up)),
            OutOfService
        );
        assert_eq!(effective_status(OutOfService, Some(Up), None), Up);
    }

    #[test]
    fn without_override_an_existing_up_or_out_of_service_lease_is_kept() {
        assert_eq!(effective_status(Up, None, Some(OutOfService)), OutOfService);
        assert_eq!(effective_status(Up, None, Some(Down)), Up);
        assert_eq!(effective_status(Up, None, None), Up);
    }
}
