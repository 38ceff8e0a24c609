//! Rust source for the typed messages of one interface: its marker type
//! (`WlDisplay`), its `Request` and `Event` enums with named fields, and
//! their `TypedMessage` and `InterfaceType` impls.
//!
//! What it is: text, written from the same [`MessageDef`]s as the tables,
//! so a variant's fields are the table's arguments in wire order. What it
//! is not: the tables ([`super`]) or the enum types ([`super::enums`]).
//!
//! # Implementation notes
//!
//! - Each enum ends with a hidden, uninhabited `__Unused` variant that uses
//!   `'a` and `Fd` (so an interface without strings, fds or messages still
//!   compiles) and needs no arm in a user's exhaustive `match`.
//! - The generated functions bind fields to `a0`, `a1`, ... rather than by
//!   their XML names, so that no argument name (`f`, `args`) can shadow
//!   what the function body uses.
//! - Every path is absolute (`::std::...`, the library's path): the code is
//!   expanded inside the caller's module, whose imports are unknown.

use std::fmt::Write;

use super::fields::Field;
use super::{message_doc, Scope};
use crate::doc;
use crate::model::{InterfaceDef, MessageDef};
use crate::names::{camel, constant, ident};

/// Which enum of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    Request,
    /// Server to client.
    Event,
}

impl Dir {
    fn type_name(self) -> &'static str {
        match self {
            Dir::Request => "Request",
            Dir::Event => "Event",
        }
    }

    /// The field of `Interface` and the opcode module.
    fn table_and_module(self) -> (&'static str, &'static str) {
        match self {
            Dir::Request => ("requests", "req"),
            Dir::Event => ("events", "evt"),
        }
    }

    fn messages(self, iface: &InterfaceDef) -> &[MessageDef] {
        match self {
            Dir::Request => &iface.requests,
            Dir::Event => &iface.events,
        }
    }
}

/// The marker type and its `InterfaceType` impl.
pub fn marker(out: &mut String, iface: &InterfaceDef, krate: &str) {
    let name = camel(&iface.name);
    let _ = writeln!(
        out,
        "    /// The `{}` interface as a type, for typed ids and messages.
    pub enum {name} {{}}
    impl {krate}::InterfaceType for {name} {{
        const INTERFACE: &'static {krate}::Interface = &INTERFACE;
        type Request<'a, Fd> = Request<'a, Fd>;
        type Event<'a, Fd> = Event<'a, Fd>;
    }}",
        iface.name
    );
}

/// The `Request` or `Event` enum of `iface` and its `TypedMessage` impl.
pub fn typed(out: &mut String, iface: &InterfaceDef, dir: Dir, scope: &Scope<'_>) {
    let krate = scope.krate;
    let ty = dir.type_name();
    let messages: Vec<Variant<'_>> = dir
        .messages(iface)
        .iter()
        .map(|m| Variant::new(m, iface, scope))
        .collect();
    let kind = ty.to_lowercase();
    let lines = [
        format!(
            "The {kind}s of `{}`, typed: one variant per {kind}, its arguments as named fields.",
            iface.name
        ),
        String::new(),
        "`Fd` is the type of fd arguments: `OwnedFd` (the default) in a decoded message,".into(),
        "`BorrowedFd` or `OwnedFd` in one to send.".into(),
        String::new(),
        "A `match` on a message by value needs an arm per message and no more; through a".into(),
        format!("reference it also needs the hidden variant's: `{ty}::__Unused(never, _) => match *never {{}}`."),
    ];
    out.push_str(&doc::attrs(&lines, "    "));
    // Variant names are the XML's: a shared prefix is the protocol's choice.
    let _ = writeln!(
        out,
        "    #[derive(Debug, Clone, PartialEq, Eq)]
    #[allow(clippy::enum_variant_names)]
    pub enum {ty}<'a, Fd = ::std::os::fd::OwnedFd> {{"
    );
    for v in &messages {
        v.declare(out, krate);
    }
    let _ = writeln!(
        out,
        "        #[doc(hidden)]
        __Unused(::core::convert::Infallible, ::core::marker::PhantomData<(&'a (), Fd)>),
    }}"
    );
    let (table, module) = dir.table_and_module();
    let _ = writeln!(
        out,
        "    impl<'a, Fd> {krate}::TypedMessage<'a, Fd> for {ty}<'a, Fd> {{
        const INTERFACE: &'static {krate}::Interface = &INTERFACE;
        fn messages() -> &'static [{krate}::MessageDesc] {{
            INTERFACE.{table}
        }}"
    );
    if messages.is_empty() {
        let _ = writeln!(
            out,
            "        fn opcode(&self) -> u16 {{
            let Self::__Unused(never, _) = self;
            match *never {{}}
        }}
        fn from_args<A: IntoIterator<Item = {krate}::Arg<'a, Fd>>>(
            opcode: u16,
            _args: A,
        ) -> Result<Self, {krate}::ArgsMismatch> {{
            Err({krate}::ArgsMismatch::new(&INTERFACE, INTERFACE.{table}, opcode))
        }}
        fn into_args(self) -> (u16, Vec<{krate}::Arg<'a, Fd>>) {{
            let Self::__Unused(never, _) = self;
            match never {{}}
        }}
        fn with_args<R>(
            &self,
            _f: impl FnOnce(u16, &[{krate}::Arg<'_, ::std::os::fd::BorrowedFd<'_>>]) -> R,
        ) -> R
        where
            Fd: ::std::os::fd::AsFd,
        {{
            let Self::__Unused(never, _) = self;
            match *never {{}}
        }}
    }}"
        );
        return;
    }
    let unused = "            Self::__Unused(never, _) => match *never {},\n";
    out.push_str("        fn opcode(&self) -> u16 {\n            match self {\n");
    for v in &messages {
        let _ = writeln!(
            out,
            "            Self::{}{} => {module}::{},",
            v.name,
            if v.fields.is_empty() { "" } else { " { .. }" },
            v.opcode
        );
    }
    out.push_str(unused);
    out.push_str("            }\n        }\n");

    let _ = writeln!(
        out,
        "        fn from_args<A: IntoIterator<Item = {krate}::Arg<'a, Fd>>>(
            opcode: u16,
            args: A,
        ) -> Result<Self, {krate}::ArgsMismatch> {{
            let mismatch = || {krate}::ArgsMismatch::new(&INTERFACE, INTERFACE.{table}, opcode);
            let mut args = args.into_iter();
            let message = match opcode {{"
    );
    for v in &messages {
        v.parse(out, module, krate);
    }
    out.push_str(
        "                _ => return Err(mismatch()),
            };
            if args.next().is_some() {
                return Err(mismatch());
            }
            Ok(message)
        }\n",
    );

    let _ = writeln!(
        out,
        "        fn into_args(self) -> (u16, Vec<{krate}::Arg<'a, Fd>>) {{
            match self {{"
    );
    for v in &messages {
        let args = v.wire_args(krate, false);
        let list = if args.is_empty() {
            "Vec::new()".to_owned()
        } else {
            format!("vec![{args}]")
        };
        let _ = writeln!(
            out,
            "                {} => ({module}::{}, {list}),",
            v.pattern(),
            v.opcode
        );
    }
    out.push_str("                Self::__Unused(never, _) => match never {},\n");
    out.push_str("            }\n        }\n");

    let _ = writeln!(
        out,
        "        fn with_args<R>(
            &self,
            f: impl FnOnce(u16, &[{krate}::Arg<'_, ::std::os::fd::BorrowedFd<'_>>]) -> R,
        ) -> R
        where
            Fd: ::std::os::fd::AsFd,
        {{
            match self {{"
    );
    for v in &messages {
        let _ = writeln!(
            out,
            "                {} => f({module}::{}, &[{}]),",
            v.pattern(),
            v.opcode,
            v.wire_args(krate, true)
        );
    }
    out.push_str("    ");
    out.push_str(unused);
    out.push_str("            }\n        }\n    }\n");
}

/// One message as a variant.
struct Variant<'m> {
    message: &'m MessageDef,
    /// CamelCase.
    name: String,
    /// The opcode constant's name.
    opcode: String,
    fields: Vec<Field<'m>>,
}

impl<'m> Variant<'m> {
    fn new(message: &'m MessageDef, iface: &InterfaceDef, scope: &Scope<'_>) -> Self {
        Variant {
            message,
            name: camel(&message.name),
            opcode: constant(&message.name),
            fields: message
                .args
                .iter()
                .filter(|a| !a.spelled_out)
                .map(|a| Field::new(a, iface, scope))
                .collect(),
        }
    }

    fn declare(&self, out: &mut String, krate: &str) {
        out.push_str(&doc::attrs(&message_doc(self.message), "        "));
        if self.fields.is_empty() {
            let _ = writeln!(out, "        {},", self.name);
            return;
        }
        let _ = writeln!(out, "        {} {{", self.name);
        for field in &self.fields {
            out.push_str(&doc::attrs(&field.doc(), "            "));
            let _ = writeln!(
                out,
                "            {}: {},",
                ident(&field.arg.name),
                field.rust_type(krate)
            );
        }
        out.push_str("        },\n");
    }

    /// `Self::Name { field: a0, ... }`, or `Self::Name`.
    fn pattern(&self) -> String {
        if self.fields.is_empty() {
            return format!("Self::{}", self.name);
        }
        let bindings: Vec<String> = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{}: a{i}", ident(&f.arg.name)))
            .collect();
        format!("Self::{} {{ {} }}", self.name, bindings.join(", "))
    }

    /// The match arm of `from_args`.
    fn parse(&self, out: &mut String, module: &str, krate: &str) {
        let _ = writeln!(out, "                {module}::{} => {{", self.opcode);
        let mut values = Vec::new();
        for (i, field) in self.fields.iter().enumerate() {
            let value = field.parse(out, &format!("a{i}"), krate);
            values.push(format!("{}: {value}", ident(&field.arg.name)));
        }
        if values.is_empty() {
            let _ = writeln!(out, "                    Self::{}", self.name);
        } else {
            let _ = writeln!(
                out,
                "                    Self::{} {{ {} }}",
                self.name,
                values.join(", ")
            );
        }
        out.push_str("                }\n");
    }

    /// The `Arg` expressions of all fields, bound as `a0`, `a1`, ...:
    /// by reference (`with_args`) or by value (`into_args`).
    fn wire_args(&self, krate: &str, by_ref: bool) -> String {
        self.fields
            .iter()
            .enumerate()
            .flat_map(|(i, f)| f.wire(&format!("a{i}"), krate, by_ref))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
