//! One argument of a typed message as a field: its Rust type, its doc,
//! how `from_args` takes it from the wire arguments and how `with_args`
//! and `into_args` put it back.
//!
//! What it is: the per-kind rules of the typed code (`int` → `i32` or an
//! enum type, a typed `object` → `ObjectId<Marker>`, an untyped `new_id`
//! → `AnyNewId`, ...), as text. What it is not: the enum that holds the
//! fields ([`super::messages`]).

use std::fmt::Write;

use super::Scope;
use crate::doc;
use crate::model::{ArgDef, Description, InterfaceDef, Kind};

/// A field's Rust type, by what the XML says of its argument.
pub(super) enum FieldType {
    Int(Option<String>),
    Uint(Option<String>),
    Fixed,
    Str {
        nullable: bool,
    },
    Array,
    Fd,
    /// A typed object id (marker path), or a bare `u32`.
    Object {
        marker: Option<String>,
        nullable: bool,
    },
    /// A typed new id (marker path), or a bare `u32`.
    NewId(Option<String>),
    /// An untyped `new_id`: interface, version, id.
    AnyNewId,
}

/// One field: its argument (the last wire argument, for an untyped
/// `new_id`) and its type.
pub(super) struct Field<'m> {
    pub arg: &'m ArgDef,
    pub ty: FieldType,
}

impl<'m> Field<'m> {
    pub fn new(arg: &'m ArgDef, iface: &InterfaceDef, scope: &Scope<'_>) -> Self {
        let enum_type = || {
            arg.enum_name
                .as_deref()
                .and_then(|e| scope.enum_type(iface, e))
        };
        let marker = || arg.interface.as_deref().and_then(|i| scope.marker(i));
        let ty = match arg.kind {
            Kind::Int => FieldType::Int(enum_type()),
            Kind::Uint => FieldType::Uint(enum_type()),
            Kind::Fixed => FieldType::Fixed,
            Kind::String => FieldType::Str {
                nullable: arg.nullable,
            },
            Kind::Array => FieldType::Array,
            Kind::Fd => FieldType::Fd,
            Kind::Object => FieldType::Object {
                marker: marker(),
                nullable: arg.nullable,
            },
            Kind::NewId if arg.interface.is_none() => FieldType::AnyNewId,
            Kind::NewId => FieldType::NewId(marker()),
        };
        Field { arg, ty }
    }

    pub fn rust_type(&self, krate: &str) -> String {
        match &self.ty {
            FieldType::Int(Some(e)) | FieldType::Uint(Some(e)) => e.clone(),
            FieldType::Int(None) => "i32".into(),
            FieldType::Uint(None) => "u32".into(),
            FieldType::Fixed => format!("{krate}::Fixed"),
            FieldType::Str { nullable: false } => "&'a ::core::ffi::CStr".into(),
            FieldType::Str { nullable: true } => "Option<&'a ::core::ffi::CStr>".into(),
            FieldType::Array => "&'a [u8]".into(),
            FieldType::Fd => "Fd".into(),
            FieldType::Object {
                marker: Some(m),
                nullable,
            } => {
                let id = format!("{krate}::ObjectId<{m}>");
                if *nullable {
                    format!("Option<{id}>")
                } else {
                    id
                }
            }
            FieldType::Object { marker: None, .. } | FieldType::NewId(None) => "u32".into(),
            FieldType::NewId(Some(m)) => format!("{krate}::NewId<{m}>"),
            FieldType::AnyNewId => format!("{krate}::AnyNewId<'a>"),
        }
    }

    pub fn doc(&self) -> Vec<String> {
        let mut lines = vec![match &self.arg.summary {
            Some(s) => doc::lines(&Description {
                summary: Some(s.clone()),
                text: None,
            })
            .remove(0),
            None => format!("`{}`.", self.arg.name),
        }];
        let note = match (&self.ty, &self.arg.interface) {
            (FieldType::AnyNewId, _) => {
                Some("The interface's name, the version and the id: three arguments on the wire.")
            }
            (
                FieldType::Object {
                    marker: None,
                    nullable: true,
                },
                Some(_),
            ) => Some("An object of an interface not generated here, by its id; 0 is null."),
            (FieldType::Object { marker: None, .. } | FieldType::NewId(None), Some(_)) => {
                Some("An object of an interface not generated here, by its id.")
            }
            _ => None,
        };
        if let Some(note) = note {
            lines.push(String::new());
            lines.push(note.to_owned());
        }
        lines
    }

    /// Writes the `let`s that take this field's wire arguments from
    /// `args` into `name`, and returns the field's value.
    pub fn parse(&self, out: &mut String, name: &str, krate: &str) -> String {
        let take = |out: &mut String, pattern: &str| {
            let _ = writeln!(
                out,
                "                    let Some({krate}::Arg::{pattern}) = args.next() else {{
                        return Err(mismatch());
                    }};"
            );
        };
        match &self.ty {
            FieldType::Int(e) => {
                take(out, &format!("Int({name})"));
                e.as_ref()
                    .map_or(name.to_owned(), |e| format!("{e}::from({name} as u32)"))
            }
            FieldType::Uint(e) => {
                take(out, &format!("Uint({name})"));
                e.as_ref()
                    .map_or(name.to_owned(), |e| format!("{e}::from({name})"))
            }
            FieldType::Fixed => {
                take(out, &format!("Fixed({name})"));
                name.to_owned()
            }
            FieldType::Str { nullable } => {
                if *nullable {
                    take(out, &format!("Str({name})"));
                } else {
                    take(out, &format!("Str(Some({name}))"));
                }
                name.to_owned()
            }
            FieldType::Array => {
                take(out, &format!("Array({name})"));
                name.to_owned()
            }
            FieldType::Fd => {
                take(out, &format!("Fd({name})"));
                name.to_owned()
            }
            FieldType::Object { marker, nullable } => {
                take(out, &format!("Object({name})"));
                match (marker, nullable) {
                    (None, _) => name.to_owned(),
                    (Some(_), true) => format!("{krate}::ObjectId::new({name})"),
                    (Some(_), false) => {
                        let _ = writeln!(
                            out,
                            "                    let Some({name}) = {krate}::ObjectId::new({name}) else {{
                        return Err(mismatch());
                    }};"
                        );
                        name.to_owned()
                    }
                }
            }
            FieldType::NewId(marker) => {
                take(out, &format!("NewId({name})"));
                match marker {
                    None => name.to_owned(),
                    Some(_) => format!("{krate}::NewId::from_raw({name})"),
                }
            }
            FieldType::AnyNewId => {
                take(out, &format!("Str(Some({name}_interface))"));
                take(out, &format!("Uint({name}_version)"));
                take(out, &format!("NewId({name})"));
                format!(
                    "{krate}::AnyNewId {{ interface: {name}_interface, version: {name}_version, id: {name} }}"
                )
            }
        }
    }

    /// The `Arg` expressions of this field, bound as `name`, by reference
    /// or by value.
    pub fn wire(&self, name: &str, krate: &str, by_ref: bool) -> Vec<String> {
        let value = if by_ref {
            format!("*{name}")
        } else {
            name.to_owned()
        };
        let arg = |variant: &str, inner: String| format!("{krate}::Arg::{variant}({inner})");
        let one = match &self.ty {
            FieldType::Int(None) => arg("Int", value),
            FieldType::Int(Some(_)) => arg("Int", format!("u32::from({value}) as i32")),
            FieldType::Uint(None) => arg("Uint", value),
            FieldType::Uint(Some(_)) => arg("Uint", format!("u32::from({value})")),
            FieldType::Fixed => arg("Fixed", value),
            FieldType::Str { nullable: false } => arg("Str", format!("Some({value})")),
            FieldType::Str { nullable: true } => arg("Str", value),
            FieldType::Array => arg("Array", value),
            FieldType::Fd if by_ref => arg("Fd", format!("::std::os::fd::AsFd::as_fd({name})")),
            FieldType::Fd => arg("Fd", value),
            FieldType::Object { marker: None, .. } => arg("Object", value),
            FieldType::Object { nullable: true, .. } => arg(
                "Object",
                format!("{name}.map_or(0, {krate}::ObjectId::raw)"),
            ),
            FieldType::Object { .. } => arg("Object", format!("{name}.raw()")),
            FieldType::NewId(None) => arg("NewId", value),
            FieldType::NewId(Some(_)) => arg("NewId", format!("{name}.raw()")),
            FieldType::AnyNewId => {
                return vec![
                    arg("Str", format!("Some({name}.interface)")),
                    arg("Uint", format!("{name}.version")),
                    arg("NewId", format!("{name}.id")),
                ]
            }
        };
        vec![one]
    }
}
