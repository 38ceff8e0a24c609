//! The protocol XML, read into plain structs.
//!
//! What it is: one pass over a `<protocol>` document with roxmltree that
//! keeps what the tables need (interfaces, messages, arguments, enums,
//! `since`, destructors) and the `<description>`s for the docs. What it is
//! not: code generation ([`crate::emit`] writes Rust from these structs),
//! and not a validator of everything the DTD says: it rejects only what
//! would make wrong tables (an unknown argument type, a missing name, a
//! value that is not a number).
//!
//! # Implementation notes
//!
//! An untyped `new_id` (one with no `interface` attribute, as in
//! `wl_registry.bind`) becomes three arguments, `string interface`,
//! `uint version` and `new_id <name>`, because that is how it travels on
//! the wire and how libwayland's signature `"sun"` spells it.

use std::fmt;

use roxmltree::{Document, Node};

/// Why a protocol file could not be read.
#[derive(Debug)]
pub enum ScanError {
    /// The file could not be read.
    Read {
        /// The path as given.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not well-formed XML.
    Xml(roxmltree::Error),
    /// The XML is well formed but says something the tables cannot hold.
    Invalid(String),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Read { path, .. } => write!(f, "cannot read {path}"),
            ScanError::Xml(_) => f.write_str("not well-formed XML"),
            ScanError::Invalid(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ScanError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ScanError::Read { source, .. } => Some(source),
            ScanError::Xml(e) => Some(e),
            ScanError::Invalid(_) => None,
        }
    }
}

/// A `<description summary="...">text</description>`, or an element's
/// `summary` attribute alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description {
    /// The one-line summary.
    pub summary: Option<String>,
    /// The body text, as written (indentation and all).
    pub text: Option<String>,
}

/// A whole `<protocol>`.
#[derive(Debug)]
pub struct Protocol {
    /// `<protocol name>`.
    pub name: String,
    /// The protocol's own description.
    pub description: Description,
    /// Its interfaces in document order.
    pub interfaces: Vec<InterfaceDef>,
}

/// One `<interface>`.
#[derive(Debug)]
pub struct InterfaceDef {
    /// The interface name.
    pub name: String,
    /// Its `version` attribute.
    pub version: u32,
    /// Its description.
    pub description: Description,
    /// Requests, in opcode order.
    pub requests: Vec<MessageDef>,
    /// Events, in opcode order.
    pub events: Vec<MessageDef>,
    /// Enums, in document order.
    pub enums: Vec<EnumDef>,
}

/// The wire type of an argument, as the XML names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `int`
    Int,
    /// `uint`
    Uint,
    /// `fixed`
    Fixed,
    /// `string`
    String,
    /// `object`
    Object,
    /// `new_id`
    NewId,
    /// `array`
    Array,
    /// `fd`
    Fd,
}

impl Kind {
    fn from_xml(name: &str) -> Option<Kind> {
        Some(match name {
            "int" => Kind::Int,
            "uint" => Kind::Uint,
            "fixed" => Kind::Fixed,
            "string" => Kind::String,
            "object" => Kind::Object,
            "new_id" => Kind::NewId,
            "array" => Kind::Array,
            "fd" => Kind::Fd,
            _ => return None,
        })
    }

    /// The XML spelling (`new_id`, `uint`, ...).
    pub fn xml_name(self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Uint => "uint",
            Kind::Fixed => "fixed",
            Kind::String => "string",
            Kind::Object => "object",
            Kind::NewId => "new_id",
            Kind::Array => "array",
            Kind::Fd => "fd",
        }
    }

    /// The variant name of `waypass_protocol::ArgKind`.
    pub fn variant(self) -> &'static str {
        match self {
            Kind::Int => "Int",
            Kind::Uint => "Uint",
            Kind::Fixed => "Fixed",
            Kind::String => "String",
            Kind::Object => "Object",
            Kind::NewId => "NewId",
            Kind::Array => "Array",
            Kind::Fd => "Fd",
        }
    }
}

/// One argument as it travels on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The argument's name.
    pub name: String,
    /// Its wire type.
    pub kind: Kind,
    /// `allow-null="true"`.
    pub nullable: bool,
    /// The fixed interface of an `object` or `new_id`, if the XML gives one.
    pub interface: Option<String>,
    /// The `enum` attribute, if any (`wl_seat.capability`, `failure`).
    pub enum_name: Option<String>,
    /// The `summary` attribute.
    pub summary: Option<String>,
    /// One of the `interface` and `version` arguments written before an
    /// untyped `new_id`: on the wire, not in the XML (typed code folds
    /// the three into one field).
    pub spelled_out: bool,
}

/// One `<request>` or `<event>`.
#[derive(Debug)]
pub struct MessageDef {
    /// The message name.
    pub name: String,
    /// `since`, 1 when absent.
    pub since: u32,
    /// `type="destructor"`.
    pub destructor: bool,
    /// Its description.
    pub description: Description,
    /// Wire arguments, an untyped `new_id` already expanded.
    pub args: Vec<ArgDef>,
}

/// One `<enum>`.
#[derive(Debug)]
pub struct EnumDef {
    /// The enum name.
    pub name: String,
    /// `bitfield="true"`.
    pub bitfield: bool,
    /// Its description.
    pub description: Description,
    /// The entries in document order.
    pub entries: Vec<EntryDef>,
}

/// One `<entry>` of an enum.
#[derive(Debug)]
pub struct EntryDef {
    /// The entry name.
    pub name: String,
    /// Its value.
    pub value: u32,
    /// `since`, 1 when absent.
    pub since: u32,
    /// Its summary and description.
    pub description: Description,
}

/// Reads a protocol document.
pub fn parse(xml: &str) -> Result<Protocol, ScanError> {
    let doc = Document::parse(xml).map_err(ScanError::Xml)?;
    let root = doc.root_element();
    if !root.has_tag_name("protocol") {
        return Err(invalid("the root element is not <protocol>"));
    }
    Ok(Protocol {
        name: required(root, "name")?.to_owned(),
        description: description(root),
        interfaces: children(root, "interface")
            .map(interface)
            .collect::<Result<_, _>>()?,
    })
}

fn interface(node: Node<'_, '_>) -> Result<InterfaceDef, ScanError> {
    let name = required(node, "name")?.to_owned();
    let in_iface = |e: ScanError| invalid(format!("interface {name}: {e}"));
    let messages = |tag| {
        children(node, tag)
            .map(message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(in_iface)
    };
    Ok(InterfaceDef {
        version: number(node, "version")?.ok_or_else(|| invalid(format!("{name}: no version")))?,
        description: description(node),
        requests: messages("request")?,
        events: messages("event")?,
        enums: children(node, "enum")
            .map(enumeration)
            .collect::<Result<_, _>>()
            .map_err(in_iface)?,
        name,
    })
}

fn message(node: Node<'_, '_>) -> Result<MessageDef, ScanError> {
    let name = required(node, "name")?.to_owned();
    let mut args = Vec::new();
    for a in children(node, "arg") {
        let arg_name = required(a, "name")?;
        let ty = required(a, "type")?;
        let kind = Kind::from_xml(ty)
            .ok_or_else(|| invalid(format!("{name}.{arg_name}: unknown type {ty:?}")))?;
        let interface = a.attribute("interface").map(str::to_owned);
        let summary = a.attribute("summary").map(str::to_owned);
        if kind == Kind::NewId && interface.is_none() {
            for (n, k) in [("interface", Kind::String), ("version", Kind::Uint)] {
                args.push(ArgDef {
                    name: n.to_owned(),
                    kind: k,
                    nullable: false,
                    interface: None,
                    enum_name: None,
                    summary: None,
                    spelled_out: true,
                });
            }
        }
        args.push(ArgDef {
            name: arg_name.to_owned(),
            kind,
            nullable: a.attribute("allow-null") == Some("true"),
            interface,
            enum_name: a.attribute("enum").map(str::to_owned),
            summary,
            spelled_out: false,
        });
    }
    Ok(MessageDef {
        since: number(node, "since")?.unwrap_or(1),
        destructor: node.attribute("type") == Some("destructor"),
        description: description(node),
        args,
        name,
    })
}

fn enumeration(node: Node<'_, '_>) -> Result<EnumDef, ScanError> {
    let name = required(node, "name")?.to_owned();
    let entries = children(node, "entry")
        .map(|e| {
            let entry = required(e, "name")?.to_owned();
            let value = number(e, "value")?
                .ok_or_else(|| invalid(format!("enum {name}.{entry}: no value")))?;
            let mut description = description(e);
            if description.summary.is_none() {
                description.summary = e.attribute("summary").map(str::to_owned);
            }
            Ok(EntryDef {
                since: number(e, "since")?.unwrap_or(1),
                name: entry,
                value,
                description,
            })
        })
        .collect::<Result<_, ScanError>>()?;
    Ok(EnumDef {
        bitfield: node.attribute("bitfield") == Some("true"),
        description: description(node),
        entries,
        name,
    })
}

/// The element's `<description>` child, or its `summary` attribute.
fn description(node: Node<'_, '_>) -> Description {
    match children(node, "description").next() {
        Some(d) => Description {
            summary: d.attribute("summary").map(str::to_owned),
            text: d.text().map(str::to_owned).filter(|t| !t.trim().is_empty()),
        },
        None => Description {
            summary: node.attribute("summary").map(str::to_owned),
            text: None,
        },
    }
}

fn children<'a, 'i>(node: Node<'a, 'i>, tag: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| n.has_tag_name(tag))
}

fn required<'a>(node: Node<'a, '_>, attr: &str) -> Result<&'a str, ScanError> {
    node.attribute(attr).ok_or_else(|| {
        invalid(format!(
            "<{}> without a {attr} attribute",
            node.tag_name().name()
        ))
    })
}

/// A decimal or `0x` hexadecimal attribute, as the DTD allows.
fn number(node: Node<'_, '_>, attr: &str) -> Result<Option<u32>, ScanError> {
    let Some(text) = node.attribute(attr) else {
        return Ok(None);
    };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed
        .map(Some)
        .map_err(|_| invalid(format!("{attr}={text:?} is not a number")))
}

fn invalid(what: impl fmt::Display) -> ScanError {
    ScanError::Invalid(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?>
<protocol name="demo">
  <interface name="demo_thing" version="3">
    <description summary="a thing">It does things.</description>
    <request name="bind">
      <arg name="name" type="uint"/>
      <arg name="id" type="new_id"/>
    </request>
    <request name="destroy" type="destructor" since="2"/>
    <event name="done">
      <arg name="fd" type="fd" summary="the file"/>
      <arg name="label" type="string" allow-null="true"/>
      <arg name="mode" type="uint" enum="mode"/>
    </event>
    <enum name="mode" bitfield="true">
      <entry name="read" value="0x1" summary="may read"/>
      <entry name="write" value="2" since="3"/>
    </enum>
  </interface>
</protocol>"#;

    #[test]
    fn reads_interfaces_messages_and_enums() {
        let p = parse(XML).unwrap();
        assert_eq!(p.name, "demo");
        let i = &p.interfaces[0];
        assert_eq!((i.name.as_str(), i.version), ("demo_thing", 3));
        assert_eq!(i.description.summary.as_deref(), Some("a thing"));
        assert_eq!(i.requests[1].since, 2);
        assert!(i.requests[1].destructor);
        let done = &i.events[0];
        assert_eq!(done.args[0].kind, Kind::Fd);
        assert!(done.args[1].nullable);
        assert_eq!(done.args[2].enum_name.as_deref(), Some("mode"));
        let mode = &i.enums[0];
        assert!(mode.bitfield);
        assert_eq!(mode.entries[0].value, 1);
        assert_eq!(
            mode.entries[0].description.summary.as_deref(),
            Some("may read")
        );
        assert_eq!(mode.entries[1].since, 3);
    }

    #[test]
    fn an_untyped_new_id_is_spelled_out_as_on_the_wire() {
        let p = parse(XML).unwrap();
        let bind: Vec<_> = p.interfaces[0].requests[0]
            .args
            .iter()
            .map(|a| (a.name.as_str(), a.kind))
            .collect();
        assert_eq!(
            bind,
            [
                ("name", Kind::Uint),
                ("interface", Kind::String),
                ("version", Kind::Uint),
                ("id", Kind::NewId)
            ]
        );
        let spelled_out = p.interfaces[0].requests[0]
            .args
            .iter()
            .map(|a| a.spelled_out);
        assert!(spelled_out.eq([false, true, true, false]));
    }

    #[test]
    fn rejects_what_would_make_wrong_tables() {
        let bad_type = XML.replace(r#"type="fd""#, r#"type="handle""#);
        assert!(parse(&bad_type)
            .unwrap_err()
            .to_string()
            .contains("unknown type"));
        let bad_value = XML.replace(r#"value="2""#, r#"value="two""#);
        assert!(parse(&bad_value)
            .unwrap_err()
            .to_string()
            .contains("not a number"));
        let no_version = XML.replace(r#" version="3""#, "");
        assert!(parse(&no_version)
            .unwrap_err()
            .to_string()
            .contains("no version"));
        assert!(matches!(parse("<protocol"), Err(ScanError::Xml(_))));
    }
}
