//! Text tests of the generated source: tables, opcodes, docs, typed
//! messages and enum types.

use super::*;
use crate::model::parse;

const XML: &str = r#"<protocol name="demo">
  <interface name="demo_manager" version="2">
<request name="get_thing"><arg name="id" type="new_id" interface="demo_thing"/>
  <arg name="seat" type="object" interface="wl_seat"/></request>
  </interface>
  <interface name="demo_thing" version="1">
<event name="done" since="1"><arg name="label" type="string" allow-null="true"/></event>
<request name="destroy" type="destructor"/>
<enum name="type"><entry name="90" value="1" summary="turned [a] quarter"/></enum>
  </interface>
</protocol>"#;

fn code(options: &Options) -> String {
    generate(&parse(XML).unwrap(), options).unwrap()
}

#[test]
fn references_within_the_file_and_to_mapped_interfaces() {
    let plain = code(&Options::default());
    assert!(plain.contains("interface: Some(&super::demo_thing::INTERFACE)"));
    assert!(plain.contains(r#"name: "seat", kind: ::waypass_protocol::ArgKind::Object, nullable: false, interface: None"#));
    let mut options = Options::default();
    options
        .external
        .insert("wl_seat".into(), "crate::core::wl_seat".into());
    assert!(code(&options).contains("interface: Some(&crate::core::wl_seat::INTERFACE)"));
}

#[test]
fn opcodes_enums_and_docs() {
    let c = code(&Options::default());
    assert!(c.contains("pub const GET_THING: u16 = 0;"));
    assert!(c.contains("pub const DESTROY: u16 = 0;"));
    assert!(c.contains("#[doc = \" `destroy()`, a destructor.\"]"));
    assert!(c.contains("#[doc = \" `done(label: string?)`.\"]"));
    assert!(c.contains("pub mod r#type {"));
    assert!(c.contains("pub const _90: u32 = 1;"));
    assert!(c.contains("Turned \\\\[a\\\\] quarter."));
    assert!(c.contains("&[&demo_manager::INTERFACE, &demo_thing::INTERFACE]"));
}

#[test]
fn only_selects_and_names_what_is_missing() {
    let mut options = Options {
        only: Some(vec!["demo_thing".into()]),
        ..Options::default()
    };
    let c = code(&options);
    assert!(!c.contains("pub mod demo_manager"));
    options.only = Some(vec!["demo_nothing".into()]);
    let err = generate(&parse(XML).unwrap(), &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "protocol demo has no interface demo_nothing"
    );
}

const TYPED_XML: &str = r#"<protocol name="typed">
  <interface name="demo_manager" version="2">
<request name="get_thing">
  <arg name="id" type="new_id" interface="demo_thing" summary="the new thing"/>
  <arg name="seat" type="object" interface="wl_seat" allow-null="true"/>
  <arg name="surface" type="object" interface="wl_surface"/>
  <arg name="kind" type="uint" enum="demo_thing.type"/>
  <arg name="fd" type="fd"/>
</request>
<request name="bind" since="2">
  <arg name="name" type="uint"/><arg name="id" type="new_id"/>
</request>
  </interface>
  <interface name="demo_thing" version="1">
<event name="done"><arg name="label" type="string" allow-null="true"/>
  <arg name="flags" type="int" enum="mode"/><arg name="other" type="uint" enum="missing"/></event>
<enum name="type"><entry name="90" value="1"/><entry name="ninety" value="1"/>
  <entry name="unknown" value="7" since="3"/></enum>
<enum name="mode" bitfield="true"><entry name="read" value="1"/><entry name="write" value="2"/></enum>
  </interface>
</protocol>"#;

fn typed_code(options: &Options) -> String {
    generate(&parse(TYPED_XML).unwrap(), options).unwrap()
}

#[test]
fn markers_and_typed_fields() {
    let c = typed_code(&Options::default());
    assert!(c.contains("pub enum DemoThing {}"));
    assert!(c.contains("impl ::waypass_protocol::InterfaceType for DemoManager {"));
    assert!(c.contains("id: ::waypass_protocol::NewId<super::demo_thing::DemoThing>,"));
    // Interfaces neither generated nor mapped are bare ids, nullable or not.
    assert!(c.contains("seat: u32,"));
    assert!(c.contains("surface: u32,"));
    assert!(c.contains("kind: super::demo_thing::Type,"));
    assert!(c.contains("fd: Fd,"));
    assert!(c.contains("id: ::waypass_protocol::AnyNewId<'a>,"));
    assert!(c.contains("label: Option<&'a ::core::ffi::CStr>,"));
    assert!(c.contains("flags: Mode,"));
    assert!(c.contains("other: u32,"), "an enum that does not exist");
    assert!(c.contains("Bind {"));
    assert!(c.contains("pub const BIND_SINCE: u32 = 2;"));
    assert!(c.contains("pub const GET_THING_SINCE: u32 = 1;"));
    assert!(c.contains(
        "__Unused(::core::convert::Infallible, ::core::marker::PhantomData<(&'a (), Fd)>),"
    ));
    // Sent in wire order, an fd borrowed, an int enum cast back.
    assert!(c.contains("f(req::GET_THING, &[::waypass_protocol::Arg::NewId(a0.raw()), ::waypass_protocol::Arg::Object(*a1), ::waypass_protocol::Arg::Object(*a2), ::waypass_protocol::Arg::Uint(u32::from(*a3)), ::waypass_protocol::Arg::Fd(::std::os::fd::AsFd::as_fd(a4))])"));
    assert!(c.contains("::waypass_protocol::Arg::Int(u32::from(*a1) as i32)"));

    let mut options = Options::default();
    options
        .external
        .insert("wl_seat".into(), "crate::core::wl_seat".into());
    let c = typed_code(&options);
    assert!(c.contains("seat: Option<::waypass_protocol::ObjectId<crate::core::wl_seat::WlSeat>>,"));
    assert!(c.contains(
        "::waypass_protocol::Arg::Object(a1.map_or(0, ::waypass_protocol::ObjectId::raw))"
    ));
}

#[test]
fn enum_types_keep_unknown_values() {
    let c = typed_code(&Options::default());
    assert!(c.contains("pub enum Type {"));
    assert!(c.contains("        _90,\n"));
    // An alias converts to the first name; an entry called `unknown`
    // moves the catch-all aside.
    assert!(c.contains("1 => Self::_90,"));
    assert!(!c.contains("1 => Self::Ninety,"));
    assert!(c.contains("Type::Ninety => 1,"));
    assert!(c.contains("other => Self::UnknownValue(other),"));
    assert!(c.contains("#[doc = \" Since version 3.\"]\n        Unknown,"));
    assert!(c.contains("pub struct Mode(u32);"));
    assert!(c.contains("pub const WRITE: Self = Self(2);"));
    assert!(c.contains(r#"fmt_flags(f, "Mode", self.0, &[("READ", 1), ("WRITE", 2)])"#));
}

#[test]
fn type_names_that_would_collide_are_errors() {
    for (name, wanted) in [
        ("request", "enum request would be called Request"),
        ("demo_thing", "enum demo_thing would be called DemoThing"),
    ] {
        let xml = TYPED_XML.replace(r#"<enum name="mode""#, &format!(r#"<enum name="{name}""#));
        let err = generate(&parse(&xml).unwrap(), &Options::default()).unwrap_err();
        assert!(err.to_string().contains(wanted), "{err}");
    }
    let xml = TYPED_XML.replace(
        r#"interface name="demo_thing""#,
        r#"interface name="event""#,
    );
    let err = generate(&parse(&xml).unwrap(), &Options::default()).unwrap_err();
    assert!(err.to_string().contains("its type Event"), "{err}");
}

#[test]
fn crate_option_replaces_every_path_of_the_library() {
    let options = Options {
        krate: Some("crate::toolkit::protocol".into()),
        ..Options::default()
    };
    for c in [code(&options), typed_code(&options)] {
        assert!(!c.contains("waypass_protocol"), "{c}");
        assert!(c.contains("crate::toolkit::protocol::Interface"));
    }
    assert!(typed_code(&options).contains("crate::toolkit::protocol::__generated::fmt_flags("));
}
