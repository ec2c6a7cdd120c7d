//! The pairing policy: who may pair, and who decides.
//!
//! Pure decisions, no I/O: the link manager asks [`decide`] what to do with each agent
//! request and carries the answer out. Outside the pairing window everything is refused.
//! Inside it, the configured policy says whether the driver must confirm (button press or a
//! UI over D-Bus) or an allowlisted phone is accepted on its own.

use codriver_config::{AllowlistEntry, PairingConfig, PairingPolicy};
use codriver_hal::Address;

/// What to do with a pairing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept now; the string names the rule that accepted it.
    Accept(&'static str),
    /// Answer with this PIN (legacy pairing).
    AcceptPin(String),
    /// Refuse, with the reason for the log.
    Reject(String),
    /// Hold the request until the driver confirms or rejects it (button or D-Bus).
    AskDriver,
}

/// The kind of request, stripped of its reply handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Numeric comparison with this passkey.
    Confirm(u32),
    /// Just-works authorization.
    Authorize,
    /// Legacy PIN request.
    PinCode,
    /// The car would have to type a passkey (it has no keyboard).
    Passkey,
}

/// Decides a pairing request from `device` (named `name`, when known).
pub fn decide(
    config: &PairingConfig,
    window_open: bool,
    device: Address,
    name: Option<&str>,
    kind: RequestKind,
) -> Decision {
    if !window_open {
        return Decision::Reject("the pairing window is closed".to_owned());
    }
    match kind {
        RequestKind::Passkey => {
            return Decision::Reject("passkey entry needs a keyboard the car does not have".into());
        }
        RequestKind::PinCode => {
            return match &config.legacy_pin {
                Some(pin)
                    if allowed(config, device, name)
                        || config.policy != PairingPolicy::Allowlist =>
                {
                    Decision::AcceptPin(pin.as_str().to_owned())
                }
                Some(_) => Decision::Reject("not on the pairing allowlist".into()),
                None => Decision::Reject("legacy PIN pairing is not configured".into()),
            };
        }
        RequestKind::Confirm(_) | RequestKind::Authorize => {}
    }
    match config.policy {
        PairingPolicy::Allowlist if allowed(config, device, name) => Decision::Accept("allowlist"),
        PairingPolicy::Allowlist => Decision::Reject("not on the pairing allowlist".into()),
        PairingPolicy::Button | PairingPolicy::Dbus | PairingPolicy::ButtonOrDbus => {
            Decision::AskDriver
        }
    }
}

/// Whether the driver's confirmation may come from `source` under `policy`.
pub fn confirmation_allowed(policy: PairingPolicy, source: ConfirmSource) -> bool {
    matches!(
        (policy, source),
        (
            PairingPolicy::Button | PairingPolicy::ButtonOrDbus,
            ConfirmSource::Button
        ) | (
            PairingPolicy::Dbus | PairingPolicy::ButtonOrDbus,
            ConfirmSource::Dbus
        )
    )
}

/// Where a confirmation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmSource {
    /// A button press (gesture mapped to confirm-pairing).
    Button,
    /// The D-Bus API (a head-unit UI).
    Dbus,
}

fn allowed(config: &PairingConfig, device: Address, name: Option<&str>) -> bool {
    config.allowlist.iter().any(|entry| match entry {
        AllowlistEntry::Address(a) => *a == device,
        AllowlistEntry::Name(n) => Some(n.as_str()) == name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: Address = Address::new([0xAA, 0xBB, 0xCC, 0x00, 0x11, 0x22]);

    fn config(policy: PairingPolicy) -> PairingConfig {
        PairingConfig {
            policy,
            ..PairingConfig::default()
        }
    }

    #[test]
    fn everything_is_rejected_outside_the_window() {
        for policy in [
            PairingPolicy::Button,
            PairingPolicy::Dbus,
            PairingPolicy::Allowlist,
        ] {
            let mut c = config(policy);
            c.allowlist = vec![AllowlistEntry::Address(PHONE)];
            assert!(matches!(
                decide(&c, false, PHONE, None, RequestKind::Confirm(1)),
                Decision::Reject(_)
            ));
        }
    }

    #[test]
    fn button_and_dbus_policies_ask_the_driver() {
        for policy in [
            PairingPolicy::Button,
            PairingPolicy::Dbus,
            PairingPolicy::ButtonOrDbus,
        ] {
            assert_eq!(
                decide(
                    &config(policy),
                    true,
                    PHONE,
                    None,
                    RequestKind::Confirm(123456)
                ),
                Decision::AskDriver
            );
        }
    }

    #[test]
    fn allowlist_accepts_by_address_or_name_and_rejects_others() {
        let mut c = config(PairingPolicy::Allowlist);
        c.allowlist = vec![
            AllowlistEntry::Address(PHONE),
            AllowlistEntry::Name("Alice's Pixel".into()),
        ];
        let other = Address::new([1, 2, 3, 4, 5, 6]);
        assert_eq!(
            decide(&c, true, PHONE, None, RequestKind::Confirm(1)),
            Decision::Accept("allowlist")
        );
        assert_eq!(
            decide(
                &c,
                true,
                other,
                Some("Alice's Pixel"),
                RequestKind::Authorize
            ),
            Decision::Accept("allowlist")
        );
        assert!(matches!(
            decide(&c, true, other, Some("Bob"), RequestKind::Confirm(1)),
            Decision::Reject(_)
        ));
    }

    #[test]
    fn legacy_pin_comes_from_config() {
        let mut c = config(PairingPolicy::Button);
        assert!(matches!(
            decide(&c, true, PHONE, None, RequestKind::PinCode),
            Decision::Reject(_)
        ));
        c.legacy_pin = Some("1234".parse().unwrap());
        assert_eq!(
            decide(&c, true, PHONE, None, RequestKind::PinCode),
            Decision::AcceptPin("1234".into())
        );
    }

    #[test]
    fn passkey_entry_is_refused() {
        assert!(matches!(
            decide(
                &config(PairingPolicy::Button),
                true,
                PHONE,
                None,
                RequestKind::Passkey
            ),
            Decision::Reject(_)
        ));
    }

    #[test]
    fn confirmation_sources_follow_the_policy() {
        use ConfirmSource::*;
        assert!(confirmation_allowed(PairingPolicy::Button, Button));
        assert!(!confirmation_allowed(PairingPolicy::Button, Dbus));
        assert!(confirmation_allowed(PairingPolicy::Dbus, Dbus));
        assert!(!confirmation_allowed(PairingPolicy::Dbus, Button));
        assert!(confirmation_allowed(PairingPolicy::ButtonOrDbus, Button));
        assert!(confirmation_allowed(PairingPolicy::ButtonOrDbus, Dbus));
        assert!(!confirmation_allowed(PairingPolicy::Allowlist, Button));
    }
}
