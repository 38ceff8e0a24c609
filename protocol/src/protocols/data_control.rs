//! The clipboard protocols for clients without a surface, generated from
//! their XML: `ext-data-control-v1` (wayland-protocols, staging) and
//! `wlr-data-control-unstable-v1` (wlr-protocols, version 2 with primary
//! selection).
//!
//! What it is: the tables and constants of both, as
//! [`waypass_scanner::interfaces!`] generates them from
//! `protocol/ext-data-control-v1.xml` and
//! `protocol/wlr-data-control-unstable-v1.xml`, vendored verbatim with
//! their copyright notices (taken from the crates.io packages
//! wayland-protocols 0.32.13 and wayland-protocols-wlr 0.3.12). What it is
//! not: the clipboard itself (the server implements it).
//!
//! # Implementation notes
//!
//! The two protocols are the same protocol under two names: every
//! interface has the same requests and events at the same opcodes, with
//! the same arguments, so code can serve both from one implementation
//! that only picks the interface table. A test below checks that.

/// `ext-data-control-v1`.
pub mod ext {
    waypass_scanner::interfaces!(
        "ext-data-control-v1.xml",
        external = [wl_seat = crate::protocols::wayland::wl_seat]
    );
}

/// `wlr-data-control-unstable-v1`.
pub mod wlr {
    waypass_scanner::interfaces!(
        "wlr-data-control-unstable-v1.xml",
        external = [wl_seat = crate::protocols::wayland::wl_seat]
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::Interface;

    /// Same messages, same opcodes, same argument kinds and nullability.
    fn same_shape(a: &Interface, b: &Interface) {
        for (x, y) in [(a.requests, b.requests), (a.events, b.events)] {
            assert_eq!(x.len(), y.len(), "{} / {}", a.name, b.name);
            for (m, n) in x.iter().zip(y) {
                assert_eq!(m.name, n.name);
                assert_eq!(m.destructor, n.destructor);
                let kinds = |d: &crate::MessageDesc| {
                    d.args
                        .iter()
                        .map(|a| (a.kind, a.nullable))
                        .collect::<Vec<_>>()
                };
                assert_eq!(kinds(m), kinds(n), "{}.{}", a.name, m.name);
            }
        }
    }

    #[test]
    fn ext_and_wlr_have_the_same_wire_shape() {
        same_shape(
            &ext::ext_data_control_manager_v1::INTERFACE,
            &wlr::zwlr_data_control_manager_v1::INTERFACE,
        );
        same_shape(
            &ext::ext_data_control_device_v1::INTERFACE,
            &wlr::zwlr_data_control_device_v1::INTERFACE,
        );
        same_shape(
            &ext::ext_data_control_source_v1::INTERFACE,
            &wlr::zwlr_data_control_source_v1::INTERFACE,
        );
        same_shape(
            &ext::ext_data_control_offer_v1::INTERFACE,
            &wlr::zwlr_data_control_offer_v1::INTERFACE,
        );
    }

    #[test]
    fn the_seat_argument_names_wl_seat() {
        use ext::ext_data_control_manager_v1 as m;
        let get = &m::INTERFACE.requests[usize::from(m::req::GET_DATA_DEVICE)];
        let seat = get.args[1].interface.expect("typed");
        assert!(std::ptr::eq(
            seat,
            &crate::protocols::wayland::wl_seat::INTERFACE
        ));
        let receive = &ext::ext_data_control_offer_v1::INTERFACE.requests[0];
        assert_eq!(receive.fd_count(), 1);
    }
}
