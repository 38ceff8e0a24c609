//! Rust source for the interface tables of a [`Protocol`].
//!
//! What it is: a pure function from the parsed XML (and the caller's
//! options) to Rust source text, so that it can be tested as text. What it
//! is not: the macro (see the crate root) or the XML reader
//! ([`crate::model`]).
//!
//! Per interface it writes a module named after it holding `INTERFACE` (a
//! `waypass_protocol::Interface`), `req` and `evt` opcode constants, and
//! one module of `u32` constants per enum, all documented from the XML. At
//! the top it writes `INTERFACES`, every generated `INTERFACE` in document
//! order.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::doc;
use crate::model::{ArgDef, Description, EnumDef, InterfaceDef, MessageDef, Protocol, ScanError};

/// What to generate, and how the generated code names what it refers to.
#[derive(Debug, Default)]
pub struct Options {
    /// Generate only these interfaces (all of the file when `None`).
    pub only: Option<Vec<String>>,
    /// Interfaces of other files that arguments refer to: name → the path
    /// of the module that holds its `INTERFACE` (e.g. `crate::wayland::wl_seat`).
    pub external: BTreeMap<String, String>,
}

/// The path of waypass-protocol as generated code names it. Inside that
/// crate it works through `extern crate self as waypass_protocol`.
const KRATE: &str = "::waypass_protocol";

/// Writes the tables of `protocol` as Rust source.
pub fn generate(protocol: &Protocol, options: &Options) -> Result<String, ScanError> {
    let selected = select(protocol, options)?;
    let names: Vec<&str> = selected.iter().map(|i| i.name.as_str()).collect();
    let resolve = |iface: &str| -> Option<String> {
        if names.contains(&iface) {
            Some(format!("super::{}", ident(iface)))
        } else {
            options.external.get(iface).cloned()
        }
    };
    let mut out = String::new();
    let mut all_doc = vec![format!(
        "Every interface generated from protocol `{}`, in the order of its XML.",
        protocol.name
    )];
    if protocol.description.summary.is_some() || protocol.description.text.is_some() {
        all_doc.push(String::new());
        all_doc.extend(doc::lines(&protocol.description));
    }
    out.push_str(&doc::attrs(&all_doc, ""));
    let _ = writeln!(
        out,
        "pub static INTERFACES: &[&{KRATE}::Interface] = &[{}];\n",
        names
            .iter()
            .map(|n| format!("&{}::INTERFACE", ident(n)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for iface in selected {
        interface(&mut out, iface, &resolve)?;
    }
    Ok(out)
}

/// The interfaces `options.only` asks for, in document order; an unknown
/// name is an error rather than a silent gap.
fn select<'p>(
    protocol: &'p Protocol,
    options: &Options,
) -> Result<Vec<&'p InterfaceDef>, ScanError> {
    let Some(only) = &options.only else {
        return Ok(protocol.interfaces.iter().collect());
    };
    if let Some(missing) = only
        .iter()
        .find(|n| !protocol.interfaces.iter().any(|i| &i.name == *n))
    {
        return Err(ScanError::Invalid(format!(
            "protocol {} has no interface {missing}",
            protocol.name
        )));
    }
    Ok(protocol
        .interfaces
        .iter()
        .filter(|i| only.contains(&i.name))
        .collect())
}

fn interface(
    out: &mut String,
    iface: &InterfaceDef,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ScanError> {
    let mut lines = vec![format!("`{}` (version {}).", iface.name, iface.version)];
    push_paragraphs(&mut lines, &iface.description);
    out.push_str(&doc::attrs(&lines, ""));
    let _ = writeln!(out, "pub mod {} {{", ident(&iface.name));
    let _ = writeln!(
        out,
        "    /// The `{}` interface: its version and every request and event by opcode.",
        iface.name
    );
    let _ = writeln!(
        out,
        "    pub static INTERFACE: {KRATE}::Interface = {KRATE}::Interface {{"
    );
    let _ = writeln!(out, "        name: {:?},", iface.name);
    let _ = writeln!(out, "        version: {},", iface.version);
    let _ = writeln!(
        out,
        "        requests: &[{}],",
        table(&iface.requests, resolve)
    );
    let _ = writeln!(out, "        events: &[{}],", table(&iface.events, resolve));
    let _ = writeln!(out, "    }};");
    opcodes(out, "req", "Request opcodes.", &iface.requests);
    opcodes(out, "evt", "Event opcodes.", &iface.events);
    for e in &iface.enums {
        if matches!(e.name.as_str(), "req" | "evt" | "INTERFACE") {
            return Err(ScanError::Invalid(format!(
                "{}: an enum named {} would hide the opcode constants",
                iface.name, e.name
            )));
        }
        enumeration(out, iface, e);
    }
    out.push_str("}\n\n");
    Ok(())
}

/// The `MessageDesc` literals of one direction.
fn table(messages: &[MessageDef], resolve: &dyn Fn(&str) -> Option<String>) -> String {
    messages
        .iter()
        .map(|m| {
            let args: Vec<String> = m.args.iter().map(|a| arg_desc(a, resolve)).collect();
            format!(
                "{KRATE}::MessageDesc {{ name: {:?}, since: {}, destructor: {}, args: &[{}] }}",
                m.name,
                m.since,
                m.destructor,
                args.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn arg_desc(a: &ArgDef, resolve: &dyn Fn(&str) -> Option<String>) -> String {
    let interface = match a.interface.as_deref().and_then(resolve) {
        Some(path) => format!("Some(&{path}::INTERFACE)"),
        None => "None".to_owned(),
    };
    format!(
        "{KRATE}::ArgDesc {{ name: {:?}, kind: {KRATE}::ArgKind::{}, nullable: {}, interface: {interface} }}",
        a.name,
        a.kind.variant(),
        a.nullable
    )
}

fn opcodes(out: &mut String, module: &str, title: &str, messages: &[MessageDef]) {
    if messages.is_empty() {
        return;
    }
    let _ = writeln!(out, "    /// {title}");
    let _ = writeln!(out, "    pub mod {module} {{");
    for (opcode, m) in messages.iter().enumerate() {
        let mut first = format!("`{}`", signature(m));
        if m.destructor {
            first.push_str(", a destructor");
        }
        if m.since > 1 {
            let _ = write!(first, " (since version {})", m.since);
        }
        first.push('.');
        let mut lines = vec![first];
        push_paragraphs(&mut lines, &m.description);
        out.push_str(&doc::attrs(&lines, "        "));
        let _ = writeln!(
            out,
            "        pub const {}: u16 = {opcode};",
            constant(&m.name)
        );
    }
    out.push_str("    }\n");
}

fn enumeration(out: &mut String, iface: &InterfaceDef, e: &EnumDef) {
    let kind = if e.bitfield { "Bitfield" } else { "Enum" };
    let mut lines = vec![format!("{kind} `{}.{}`.", iface.name, e.name)];
    push_paragraphs(&mut lines, &e.description);
    out.push_str(&doc::attrs(&lines, "    "));
    let _ = writeln!(out, "    pub mod {} {{", ident(&e.name));
    for entry in &e.entries {
        let mut lines = doc::lines(&entry.description);
        if lines.is_empty() {
            lines.push(format!("`{}`.", entry.name));
        }
        if entry.since > 1 {
            lines.push(String::new());
            lines.push(format!("Since version {}.", entry.since));
        }
        out.push_str(&doc::attrs(&lines, "        "));
        let _ = writeln!(
            out,
            "        pub const {}: u32 = {};",
            constant(&entry.name),
            entry.value
        );
    }
    out.push_str("    }\n");
}

/// A blank line, then the description, when there is one.
fn push_paragraphs(lines: &mut Vec<String>, description: &Description) {
    let more = doc::lines(description);
    if !more.is_empty() {
        lines.push(String::new());
        lines.extend(more);
    }
}

/// `name(arg: type, ...)`, as the XML would read: `new_id<wl_pointer>`,
/// `string?` for a nullable one.
fn signature(m: &MessageDef) -> String {
    let args: Vec<String> = m
        .args
        .iter()
        .map(|a| {
            let mut ty = a.kind.xml_name().to_owned();
            if let Some(i) = &a.interface {
                let _ = write!(ty, "<{i}>");
            }
            if a.nullable {
                ty.push('?');
            }
            format!("{}: {ty}", a.name)
        })
        .collect();
    format!("{}({})", m.name, args.join(", "))
}

/// An XML name as a constant: upper case, `_`-prefixed if it starts with
/// a digit (`wl_output.transform`'s `90`).
fn constant(name: &str) -> String {
    let upper = name.to_uppercase();
    if upper.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{upper}")
    } else {
        upper
    }
}

/// An XML name as a module name, raw when it is a Rust keyword.
fn ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "do", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type",
        "unsafe", "use", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
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
}
