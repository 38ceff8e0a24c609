//! Rust source for the type of one protocol enum: a Rust `enum` that keeps
//! unknown values, or a flag set for a bitfield.
//!
//! What it is: text, beside the enum's module of `u32` constants (which
//! stays). What it is not: the constants ([`super`]) or the messages that
//! use the type ([`super::messages`]).
//!
//! # Implementation notes
//!
//! - A value the XML does not name (a newer peer's) is kept: `Unknown(v)`,
//!   or bits no flag names, so converting to the type and back is lossless.
//!   If an entry is itself called `unknown`, the catch-all is
//!   `UnknownValue(v)`.
//! - Two entries with the same value (an alias) both get a variant; the
//!   first one is what the value converts to.
//! - `xml_name()` gives a value's XML name (`name_taken`), for logs that
//!   spell it as the protocol does, so no crate keeps a copy of the names.

use std::fmt::Write;

use crate::doc;
use crate::model::{EntryDef, EnumDef, InterfaceDef};
use crate::names::{camel, constant};

/// The type of `e`, and its conversions from and to `u32`.
pub fn typed(out: &mut String, iface: &InterfaceDef, e: &EnumDef, krate: &str) {
    let mut lines = vec![format!(
        "`{}.{}` as a type, with the values the XML does not name kept.",
        iface.name, e.name
    )];
    super::push_paragraphs(&mut lines, &e.description);
    out.push_str(&doc::attrs(&lines, "    "));
    if e.bitfield {
        bitfield(out, e, krate);
    } else {
        enumeration(out, e);
    }
}

/// An entry's doc lines: its summary (or name) and `since`.
fn entry_doc(entry: &EntryDef) -> Vec<String> {
    let mut lines = doc::lines(&entry.description);
    if lines.is_empty() {
        lines.push(format!("`{}`.", entry.name));
    }
    if entry.since > 1 {
        lines.push(String::new());
        lines.push(format!("Since version {}.", entry.since));
    }
    lines
}

fn enumeration(out: &mut String, e: &EnumDef) {
    let ty = camel(&e.name);
    let catch_all = if e.entries.iter().any(|x| camel(&x.name) == "Unknown") {
        "UnknownValue"
    } else {
        "Unknown"
    };
    // Variant names are the XML's: a shared prefix is the protocol's choice.
    out.push_str(
        "    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[allow(clippy::enum_variant_names)]\n",
    );
    let _ = writeln!(out, "    pub enum {ty} {{");
    for entry in &e.entries {
        out.push_str(&doc::attrs(&entry_doc(entry), "        "));
        let _ = writeln!(out, "        {},", camel(&entry.name));
    }
    let _ = writeln!(
        out,
        "        /// A value the XML does not name.
        {catch_all}(u32),
    }}"
    );
    let _ = writeln!(
        out,
        "    impl From<u32> for {ty} {{
        fn from(value: u32) -> Self {{
            match value {{"
    );
    let mut seen = Vec::new();
    for entry in &e.entries {
        if seen.contains(&entry.value) {
            continue; // an alias: the first name wins
        }
        seen.push(entry.value);
        let _ = writeln!(
            out,
            "                {} => Self::{},",
            entry.value,
            camel(&entry.name)
        );
    }
    let _ = writeln!(
        out,
        "                other => Self::{catch_all}(other),
            }}
        }}
    }}
    impl From<{ty}> for u32 {{
        fn from(value: {ty}) -> u32 {{
            match value {{"
    );
    variant_arms(out, &ty, e, |entry| entry.value.to_string());
    let _ = writeln!(
        out,
        "                {ty}::{catch_all}(other) => other,
            }}
        }}
    }}
    impl {ty} {{
        /// The value's name in the protocol XML (`None` for a value it
        /// does not name), as logs and traces spell it.
        pub fn xml_name(self) -> Option<&'static str> {{
            match self {{"
    );
    variant_arms(out, &ty, e, |entry| format!("Some({:?})", entry.name));
    let _ = writeln!(
        out,
        "                {ty}::{catch_all}(_) => None,
            }}
        }}
    }}"
    );
}

/// One `match` arm per entry: `Ty::Variant => {rhs},`.
fn variant_arms(out: &mut String, ty: &str, e: &EnumDef, rhs: impl Fn(&EntryDef) -> String) {
    for entry in &e.entries {
        let _ = writeln!(
            out,
            "                {ty}::{} => {},",
            camel(&entry.name),
            rhs(entry)
        );
    }
}

fn bitfield(out: &mut String, e: &EnumDef, krate: &str) {
    let ty = camel(&e.name);
    let _ = writeln!(
        out,
        "    #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct {ty}(u32);
    impl {ty} {{"
    );
    for entry in &e.entries {
        out.push_str(&doc::attrs(&entry_doc(entry), "        "));
        let _ = writeln!(
            out,
            "        pub const {}: Self = Self({});",
            constant(&entry.name),
            entry.value
        );
    }
    let _ = writeln!(
        out,
        "        /// The bits, as on the wire.
        pub const fn bits(self) -> u32 {{
            self.0
        }}
        /// These bits, named or not.
        pub const fn from_bits_retain(bits: u32) -> Self {{
            Self(bits)
        }}
        /// Whether every bit of `other` is set in `self`.
        pub const fn contains(self, other: Self) -> bool {{
            self.0 & other.0 == other.0
        }}
        /// Whether no bit is set.
        pub const fn is_empty(self) -> bool {{
            self.0 == 0
        }}
    }}
    impl ::core::ops::BitOr for {ty} {{
        type Output = Self;
        fn bitor(self, other: Self) -> Self {{
            Self(self.0 | other.0)
        }}
    }}
    impl ::core::ops::BitAnd for {ty} {{
        type Output = Self;
        fn bitand(self, other: Self) -> Self {{
            Self(self.0 & other.0)
        }}
    }}
    impl ::core::ops::BitOrAssign for {ty} {{
        fn bitor_assign(&mut self, other: Self) {{
            self.0 |= other.0;
        }}
    }}
    impl From<u32> for {ty} {{
        fn from(bits: u32) -> Self {{
            Self(bits)
        }}
    }}
    impl From<{ty}> for u32 {{
        fn from(flags: {ty}) -> u32 {{
            flags.0
        }}
    }}
    impl ::core::fmt::Debug for {ty} {{
        /// The names of the flags set, then any other bits in hex: `{ty}(A | 0x10)`.
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{
            {krate}::__generated::fmt_flags(f, {ty:?}, self.0, &[{}])
        }}
    }}",
        e.entries
            .iter()
            .map(|x| format!("({:?}, {})", constant(&x.name), x.value))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
