//! The generated interface tables say exactly what the protocol XML says,
//! checked by a reader independent of waypass-scanner's.
//!
//! It reads `protocol/wayland.xml` (upstream, verbatim) and
//! `protocol/waypass-broker-v1.xml`, and for every interface in
//! `protocols::ALL` compares name, version, and each request and event in
//! order: name, `since` (1 when absent), destructor type, and each
//! argument's name, kind, allow-null and interface. An untyped `new_id` is
//! expanded to `string interface, uint version, new_id id`, as on the wire;
//! an interface the crate does not describe maps to `None`. It also checks
//! the enum constants against the XML entries, and that the broker XML
//! documents everything.

use std::path::Path;

use roxmltree::{Document, Node};
use waypass_protocol::protocols::{self, broker, interface_by_name, wayland};
use waypass_protocol::{ArgDesc, ArgKind, Interface, MessageDesc};

fn read_xml(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn children<'a, 'i>(node: Node<'a, 'i>, tag: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| n.has_tag_name(tag))
}

/// The `<interface name=...>` element of `doc`, if any.
fn xml_interface<'a, 'i>(doc: &'a Document<'i>, name: &str) -> Option<Node<'a, 'i>> {
    children(doc.root_element(), "interface").find(|n| n.attribute("name") == Some(name))
}

fn kind_of(xml_type: &str) -> Option<ArgKind> {
    Some(match xml_type {
        "int" => ArgKind::Int,
        "uint" => ArgKind::Uint,
        "fixed" => ArgKind::Fixed,
        "string" => ArgKind::String,
        "object" => ArgKind::Object,
        "new_id" => ArgKind::NewId,
        "array" => ArgKind::Array,
        "fd" => ArgKind::Fd,
        _ => return None,
    })
}

/// One argument as the XML says it travels: (name, kind, nullable, interface).
type WireArg = (String, ArgKind, bool, Option<&'static str>);

/// The wire arguments of one `<request>`/`<event>`, untyped `new_id` expanded.
fn xml_args(message: Node<'_, '_>) -> Result<Vec<WireArg>, String> {
    let mut out = Vec::new();
    for a in children(message, "arg") {
        let name = a.attribute("name").ok_or("arg without name")?.to_owned();
        let ty = a.attribute("type").ok_or("arg without type")?;
        let kind = kind_of(ty).ok_or_else(|| format!("unknown arg type {ty}"))?;
        let nullable = a.attribute("allow-null") == Some("true");
        let iface = a.attribute("interface");
        if kind == ArgKind::NewId && iface.is_none() {
            out.push(("interface".to_owned(), ArgKind::String, false, None));
            out.push(("version".to_owned(), ArgKind::Uint, false, None));
        }
        // Interfaces the crate does not describe are `None` in the tables.
        let described = iface.and_then(interface_by_name).map(|i| i.name);
        out.push((name, kind, nullable, described));
    }
    Ok(out)
}

fn table_args(args: &[ArgDesc]) -> Vec<WireArg> {
    args.iter()
        .map(|a| {
            let iface = a.interface.map(|i| i.name);
            (a.name.to_owned(), a.kind, a.nullable, iface)
        })
        .collect()
}

fn compare_messages(
    what: &str,
    table: &[MessageDesc],
    xml: Vec<Node<'_, '_>>,
    diffs: &mut Vec<String>,
) {
    if table.len() != xml.len() {
        diffs.push(format!(
            "{what}: {} in the table, {} in the XML",
            table.len(),
            xml.len()
        ));
    }
    for (opcode, (t, x)) in table.iter().zip(&xml).enumerate() {
        let at = format!("{what} {opcode}");
        let name = x.attribute("name").unwrap_or("");
        if t.name != name {
            diffs.push(format!(
                "{at}: named {} in the table, {name} in the XML",
                t.name
            ));
        }
        let since: u32 = x.attribute("since").map_or(1, |s| s.parse().unwrap_or(0));
        if t.since != since {
            diffs.push(format!("{at} {name}: since {} vs {since}", t.since));
        }
        let destructor = x.attribute("type") == Some("destructor");
        if t.destructor != destructor {
            diffs.push(format!(
                "{at} {name}: destructor {} vs {destructor}",
                t.destructor
            ));
        }
        match xml_args(*x) {
            Ok(args) if args == table_args(t.args) => {}
            Ok(args) => diffs.push(format!(
                "{at} {name}: args\n  table {:?}\n  xml   {args:?}",
                table_args(t.args)
            )),
            Err(e) => diffs.push(format!("{at} {name}: {e}")),
        }
    }
}

/// Every way `table` differs from the XML's `<interface>`; empty if none.
fn differences(table: &Interface, xml: Node<'_, '_>) -> Vec<String> {
    let mut diffs = Vec::new();
    if xml.attribute("name") != Some(table.name) {
        diffs.push(format!(
            "name {} vs {:?}",
            table.name,
            xml.attribute("name")
        ));
    }
    let version = xml.attribute("version").and_then(|v| v.parse::<u32>().ok());
    if version != Some(table.version) {
        diffs.push(format!(
            "{}: version {} vs {version:?}",
            table.name, table.version
        ));
    }
    let requests = children(xml, "request").collect();
    compare_messages(
        &format!("{}.request", table.name),
        table.requests,
        requests,
        &mut diffs,
    );
    let events = children(xml, "event").collect();
    compare_messages(
        &format!("{}.event", table.name),
        table.events,
        events,
        &mut diffs,
    );
    diffs
}

fn documents() -> [(String, &'static str); 4] {
    [
        (read_xml("wayland.xml"), "wayland.xml"),
        (read_xml("waypass-broker-v1.xml"), "waypass-broker-v1.xml"),
        (
            read_xml("ext-data-control-v1.xml"),
            "ext-data-control-v1.xml",
        ),
        (
            read_xml("wlr-data-control-unstable-v1.xml"),
            "wlr-data-control-unstable-v1.xml",
        ),
    ]
}

#[test]
fn every_described_interface_matches_its_xml() {
    let sources = documents();
    let docs: Vec<_> = sources
        .iter()
        .map(|(text, file)| {
            (
                Document::parse(text).unwrap_or_else(|e| panic!("{file}: {e}")),
                *file,
            )
        })
        .collect();
    let mut all = Vec::new();
    for table in protocols::ALL {
        let found: Vec<_> = docs
            .iter()
            .filter_map(|(doc, file)| xml_interface(doc, table.name).map(|n| (n, *file)))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{} must be in exactly one XML file",
            table.name
        );
        all.extend(differences(table, found[0].0));
    }
    assert!(
        all.is_empty(),
        "tables drifted from the XML:\n{}",
        all.join("\n")
    );
}

#[test]
fn the_broker_xml_describes_exactly_the_broker_tables() {
    let text = read_xml("waypass-broker-v1.xml");
    let doc = Document::parse(&text).expect("broker XML parses");
    assert_eq!(
        doc.root_element().attribute("name"),
        Some("waypass_broker_v1")
    );
    let names: Vec<_> = children(doc.root_element(), "interface")
        .filter_map(|n| n.attribute("name"))
        .collect();
    let described: Vec<_> = protocols::ALL
        .iter()
        .filter(|i| i.name.starts_with("waypass_"))
        .map(|i| i.name)
        .collect();
    assert_eq!(names, described);
}

/// The elements of the broker XML that lack a `<description summary>`.
fn undocumented(doc: &Document<'_>) -> Vec<String> {
    let documented = |n: Node<'_, '_>| {
        children(n, "description").any(|d| d.attribute("summary").is_some_and(|s| !s.is_empty()))
    };
    let tags = ["protocol", "interface", "request", "event", "enum", "entry"];
    doc.descendants()
        .filter(|n| tags.iter().any(|t| n.has_tag_name(*t)) && !documented(*n))
        .map(|n| format!("<{} name={:?}>", n.tag_name().name(), n.attribute("name")))
        .collect()
}

#[test]
fn the_broker_xml_documents_everything() {
    let text = read_xml("waypass-broker-v1.xml");
    let doc = Document::parse(&text).expect("broker XML parses");
    let missing = undocumented(&doc);
    assert!(missing.is_empty(), "undocumented: {missing:?}");
    // The check itself notices a missing description.
    let broken = text.replacen("<description summary=\"acknowledge a message\">", "<!--", 1);
    let broken = broken.replacen(
        "The receiver has handled the message with this serial.\n      </description>",
        "-->",
        1,
    );
    let doc = Document::parse(&broken).expect("altered XML parses");
    assert_eq!(
        undocumented(&doc),
        vec!["<request name=Some(\"ack\")>".to_owned()]
    );
}

/// (interface, enum, [(entry, constant)]).
type EnumCheck = (&'static str, &'static str, &'static [(&'static str, u32)]);

#[test]
fn enum_constants_match_the_xml_entries() {
    use broker::waypass_broker_v1::failure;
    use wayland::{wl_display, wl_keyboard, wl_pointer, wl_seat};
    let checks: &[EnumCheck] = &[
        (
            "wl_display",
            "error",
            &[
                ("invalid_object", wl_display::error::INVALID_OBJECT),
                ("invalid_method", wl_display::error::INVALID_METHOD),
                ("no_memory", wl_display::error::NO_MEMORY),
                ("implementation", wl_display::error::IMPLEMENTATION),
            ],
        ),
        (
            "wl_seat",
            "capability",
            &[
                ("pointer", wl_seat::capability::POINTER),
                ("keyboard", wl_seat::capability::KEYBOARD),
                ("touch", wl_seat::capability::TOUCH),
            ],
        ),
        (
            "wl_seat",
            "error",
            &[("missing_capability", wl_seat::error::MISSING_CAPABILITY)],
        ),
        (
            "wl_keyboard",
            "keymap_format",
            &[
                ("no_keymap", wl_keyboard::keymap_format::NO_KEYMAP),
                ("xkb_v1", wl_keyboard::keymap_format::XKB_V1),
            ],
        ),
        (
            "wl_keyboard",
            "key_state",
            &[
                ("released", wl_keyboard::key_state::RELEASED),
                ("pressed", wl_keyboard::key_state::PRESSED),
                ("repeated", wl_keyboard::key_state::REPEATED),
            ],
        ),
        ("wl_pointer", "error", &[("role", wl_pointer::error::ROLE)]),
        (
            "wl_pointer",
            "button_state",
            &[
                ("released", wl_pointer::button_state::RELEASED),
                ("pressed", wl_pointer::button_state::PRESSED),
            ],
        ),
        (
            "wl_pointer",
            "axis",
            &[
                ("vertical_scroll", wl_pointer::axis::VERTICAL_SCROLL),
                ("horizontal_scroll", wl_pointer::axis::HORIZONTAL_SCROLL),
            ],
        ),
        (
            "waypass_broker_v1",
            "failure",
            &[
                ("invalid_name", failure::INVALID_NAME),
                ("name_taken", failure::NAME_TAKEN),
                ("too_many_names", failure::TOO_MANY_NAMES),
                ("unknown_name", failure::UNKNOWN_NAME),
                ("self_connect", failure::SELF_CONNECT),
                ("too_many_pending", failure::TOO_MANY_PENDING),
                ("busy", failure::BUSY),
            ],
        ),
    ];
    let sources = documents();
    let docs: Vec<_> = sources
        .iter()
        .map(|(t, _)| Document::parse(t).expect("parses"))
        .collect();
    for (iface, enum_name, consts) in checks {
        let node = docs
            .iter()
            .find_map(|d| xml_interface(d, iface))
            .expect(iface);
        let e = children(node, "enum")
            .find(|e| e.attribute("name") == Some(enum_name))
            .unwrap_or_else(|| panic!("{iface}.{enum_name} missing"));
        let entries: Vec<(&str, u32)> = children(e, "entry")
            .map(|x| {
                let v = x.attribute("value").expect("value");
                (
                    x.attribute("name").expect("name"),
                    v.parse().expect("decimal value"),
                )
            })
            .collect();
        assert_eq!(&entries[..], *consts, "{iface}.{enum_name}");
    }
}

/// A copy of `table` with one message changed, for showing that
/// [`differences`] notices.
fn altered(table: &'static Interface, change: impl Fn(&mut Vec<MessageDesc>)) -> Interface {
    let mut events = table.events.to_vec();
    change(&mut events);
    Interface {
        name: table.name,
        version: table.version,
        requests: table.requests,
        events: Vec::leak(events),
    }
}

#[test]
fn the_comparison_notices_each_kind_of_drift() {
    let text = read_xml("wayland.xml");
    let doc = Document::parse(&text).expect("parses");
    let xml = xml_interface(&doc, "wl_keyboard").expect("wl_keyboard");
    let real = &wayland::wl_keyboard::INTERFACE;
    assert_eq!(differences(real, xml), Vec::<String>::new());

    let older = Interface {
        version: real.version - 1,
        ..altered(real, |_| {})
    };
    let mut args_of_keymap = real.events[0].args.to_vec();
    args_of_keymap[1].kind = ArgKind::Int;
    let wrong_kind: &'static [ArgDesc] = Vec::leak(args_of_keymap);
    let mut args_of_enter = real.events[1].args.to_vec();
    args_of_enter[1].nullable = true;
    let wrong_null: &'static [ArgDesc] = Vec::leak(args_of_enter);
    let mut args_of_enter = real.events[1].args.to_vec();
    args_of_enter[1].interface = Some(&wayland::wl_seat::INTERFACE);
    let wrong_iface: &'static [ArgDesc] = Vec::leak(args_of_enter);

    let drifted = [
        ("version", older),
        ("swapped", altered(real, |e| e.swap(1, 2))),
        ("missing", altered(real, |e| e.truncate(5))),
        ("since", altered(real, |e| e[5].since = 1)),
        ("destructor", altered(real, |e| e[0].destructor = true)),
        ("name", altered(real, |e| e[3].name = "keys")),
        ("kind", altered(real, |e| e[0].args = wrong_kind)),
        ("allow-null", altered(real, |e| e[1].args = wrong_null)),
        ("interface", altered(real, |e| e[1].args = wrong_iface)),
        (
            "arg dropped",
            altered(real, |e| e[2].args = &real.events[2].args[..1]),
        ),
    ];
    for (what, table) in &drifted {
        assert!(
            !differences(table, xml).is_empty(),
            "{what} drift went unnoticed"
        );
    }
}

#[test]
fn untyped_new_id_is_expanded_and_unknown_interfaces_map_to_none() {
    let text = read_xml("wayland.xml");
    let doc = Document::parse(&text).expect("parses");
    let registry = xml_interface(&doc, "wl_registry").expect("wl_registry");
    let bind = children(registry, "request").next().expect("bind");
    let names: Vec<_> = xml_args(bind).unwrap().into_iter().map(|a| a.0).collect();
    assert_eq!(names, ["name", "interface", "version", "id"]);
    let pointer = xml_interface(&doc, "wl_pointer").expect("wl_pointer");
    let set_cursor = children(pointer, "request").next().expect("set_cursor");
    let surface = &xml_args(set_cursor).unwrap()[1];
    assert_eq!(
        surface,
        &("surface".to_owned(), ArgKind::Object, true, None)
    );
}
