//! Interface tables: Wayland's core interfaces and waypass's own extension.
//!
//! What it is: static data. Each interface is a module holding `INTERFACE`
//! plus `req`, `evt` and enum constants, so that code names opcodes instead
//! of numbers, and [`interface_by_name`] finds a table from the name a peer
//! sent (as in `wl_registry.bind`). What it is not: dispatch. Nothing here
//! knows what a message does.
//!
//! # Implementation notes
//!
//! [`wayland`] is generated from upstream `wayland.xml` and [`broker`] from
//! `protocol/waypass-broker-v1.xml` by [`waypass_scanner::interfaces!`], so
//! the XML is the single reference. [`ALL`] is the index that
//! [`interface_by_name`] searches; a test checks that it holds every
//! generated interface.

use crate::interface::Interface;

pub mod broker;
pub mod wayland;

/// Every interface this crate describes, core first, then the broker.
pub static ALL: &[&Interface] = &[
    &wayland::wl_display::INTERFACE,
    &wayland::wl_registry::INTERFACE,
    &wayland::wl_callback::INTERFACE,
    &wayland::wl_seat::INTERFACE,
    &wayland::wl_keyboard::INTERFACE,
    &wayland::wl_pointer::INTERFACE,
    &wayland::wl_touch::INTERFACE,
    &broker::waypass_broker_v1::INTERFACE,
    &broker::waypass_name_v1::INTERFACE,
    &broker::waypass_connection_v1::INTERFACE,
    &broker::waypass_peer_v1::INTERFACE,
];

/// The described interface called `name`, e.g. `"wl_seat"`.
///
/// ```
/// use waypass_protocol::protocols::{interface_by_name, wayland::wl_seat};
///
/// assert_eq!(interface_by_name("wl_seat"), Some(&wl_seat::INTERFACE));
/// assert_eq!(interface_by_name("wl_surface"), None);
/// ```
pub fn interface_by_name(name: &str) -> Option<&'static Interface> {
    ALL.iter().copied().find(|i| i.name == name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Which table an opcode constant indexes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Dir {
        Req,
        Evt,
    }

    /// Checks an interface module's opcode constants:
    /// `opcodes!(wl_seat, req: [GET_POINTER, ...], evt: [CAPABILITIES, ...])`.
    /// Each constant must equal the position of the message whose name is
    /// the constant's name in lower case, and every message must be listed.
    macro_rules! opcodes {
        ($iface:ident, req: [$($r:ident),* $(,)?], evt: [$($e:ident),* $(,)?]) => {
            $crate::protocols::tests::check_opcodes(
                &$iface::INTERFACE,
                &[
                    $(($crate::protocols::tests::Dir::Req, stringify!($r), $iface::req::$r),)*
                    $(($crate::protocols::tests::Dir::Evt, stringify!($e), $iface::evt::$e),)*
                ],
            )
        };
    }
    pub(crate) use opcodes;

    /// Checks that each `(direction, NAME, constant)` names the message
    /// `name` at that position, and that every message of `iface` is listed.
    pub(crate) fn check_opcodes(iface: &Interface, consts: &[(Dir, &str, u16)]) {
        for &(dir, upper, value) in consts {
            let name = upper.to_lowercase();
            let found = match dir {
                Dir::Req => iface.request_opcode(&name),
                Dir::Evt => iface.event_opcode(&name),
            };
            assert_eq!(
                found,
                Some(value),
                "{}: {dir:?} constant for {name}",
                iface.name
            );
        }
        let reqs = consts.iter().filter(|c| c.0 == Dir::Req).count();
        let evts = consts.len() - reqs;
        assert_eq!(
            reqs,
            iface.requests.len(),
            "{}: request constants",
            iface.name
        );
        assert_eq!(evts, iface.events.len(), "{}: event constants", iface.name);
    }

    #[test]
    fn every_interface_is_found_by_its_name() {
        for iface in ALL {
            let found = interface_by_name(iface.name).expect(iface.name);
            assert!(std::ptr::eq(found, *iface), "{}", iface.name);
        }
        assert!(interface_by_name("wl_surface").is_none());
        assert!(interface_by_name("").is_none());
    }

    #[test]
    fn every_generated_interface_is_in_the_index() {
        for iface in wayland::INTERFACES.iter().chain(broker::INTERFACES) {
            assert!(
                ALL.iter().any(|i| std::ptr::eq(*i, *iface)),
                "{}",
                iface.name
            );
        }
        assert_eq!(
            ALL.len(),
            wayland::INTERFACES.len() + broker::INTERFACES.len()
        );
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(ALL[i + 1..].iter().all(|b| b.name != a.name), "{}", a.name);
        }
    }

    #[test]
    fn check_opcodes_rejects_a_wrong_constant() {
        let iface = &wayland::wl_display::INTERFACE;
        let wrong = std::panic::catch_unwind(|| {
            check_opcodes(
                iface,
                &[(Dir::Req, "sync", 1), (Dir::Req, "get_registry", 0)],
            )
        });
        assert!(wrong.is_err());
        let missing = std::panic::catch_unwind(|| check_opcodes(iface, &[(Dir::Req, "SYNC", 0)]));
        assert!(missing.is_err());
    }
}
