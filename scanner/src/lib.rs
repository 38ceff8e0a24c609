//! `waypass-scanner`: the interface tables of `waypass-protocol`, generated
//! from Wayland protocol XML at compile time.
//!
//! [`interfaces!`] reads a protocol XML file and expands, where it is
//! called, to one module per interface: `INTERFACE` (the
//! `waypass_protocol::Interface` table the codec, the tracer and the
//! dispatchers read), `req` and `evt` opcode and `*_SINCE` constants, and
//! a module of `u32` constants per enum; beside them, typed code: a marker
//! type (`WlSeat`, for `ObjectId<WlSeat>`), `Request` and `Event` enums
//! with one variant per message and its arguments as named, typed fields
//! (implementing `waypass_protocol::TypedMessage`), and a type per enum
//! (a Rust enum keeping unknown values, or a flag set for a bitfield).
//! Everything is documented from the XML's `<description>`s. At the top
//! comes `INTERFACES`, every `INTERFACE` in document order.
//! waypass-protocol builds its own tables (`wayland.xml`,
//! `waypass-broker-v1.xml`) this way, and so can a crate with its own
//! extension.
//!
//! [`interfaces!`] has an example; waypass-protocol re-exports the macro
//! as `waypass_protocol::interfaces!`, and the crate in
//! `examples/custom-protocol/` (outside the workspace) serves and calls a
//! protocol of its own with it.
//!
//! It is what wayland-scanner (C) and wayland-rs' `wayland-scanner` are for
//! their libraries, in the shape this crate's codec reads: static tables
//! and typed messages that convert to and from its positional arguments,
//! not generated dispatch code.
//!
//! # Implementation notes
//!
//! - `model` reads the XML (roxmltree), `doc` turns descriptions into
//!   rustdoc, `names` turns XML names into Rust ones, `emit` writes the
//!   Rust source as text (so it is unit-tested as text; `emit::messages`
//!   and `emit::enums` the typed code), and the macro parses that text
//!   into tokens. The macro's own
//!   input is a handful of tokens, read by hand rather than with syn.
//! - The generated code names the library as `::waypass_protocol`
//!   (waypass-protocol itself declares `extern crate self as
//!   waypass_protocol` for that), or by the path `crate = path` gives.
//!   The code is written as text and parsed, so the path is taken as
//!   written: `$crate` from a `macro_rules!` caller would not resolve.
//! - The expansion ends with `include_bytes!` of the XML file, so that
//!   cargo rebuilds the calling crate when the file changes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod doc;
mod emit;
mod model;
mod names;

use std::path::PathBuf;

use proc_macro::{Delimiter, TokenStream, TokenTree};

use emit::Options;

/// Expands to the interface tables and typed messages of a protocol XML
/// file.
///
/// `interfaces!("path.xml")`, with the path relative to the calling
/// crate's `Cargo.toml`, optionally followed by
/// - `only = [iface, ...]`: generate just these interfaces;
/// - `external = [iface = path::to::module, ...]`: where the module of an
///   interface from another file lives (its `INTERFACE`, marker type and
///   enum types), for arguments that name it; an interface neither
///   generated nor mapped appears as `interface: None` in the tables and
///   as a bare `u32` id in typed messages;
/// - `crate = path::to::waypass_protocol`: the path the generated code
///   names waypass-protocol by, for a crate that reaches it only through
///   a re-export (`::waypass_protocol` by default).
///
/// ```
/// use std::os::fd::OwnedFd;
///
/// use waypass_protocol::{Arg, TypedMessage};
///
/// pub mod greeter {
///     // The path is relative to the crate's Cargo.toml.
///     waypass_scanner::interfaces!(
///         "tests/greeter-v1.xml",
///         external = [wl_seat = waypass_protocol::protocols::wayland::wl_seat]
///     );
/// }
///
/// /// A library that wraps waypass-protocol and re-exports it.
/// pub mod toolkit {
///     pub use waypass_protocol as protocol;
/// }
///
/// pub mod greeter_again {
///     // Through the re-export (waypass-protocol re-exports the macro too).
///     crate::toolkit::protocol::interfaces!(
///         "tests/greeter-v1.xml",
///         crate = crate::toolkit::protocol
///     );
/// }
///
/// fn main() {
///     use greeter::greeter_v1;
///     use waypass_protocol::ObjectId;
///
///     let greet: greeter_v1::Request<'_, OwnedFd> = greeter_v1::Request::Greet {
///         name: c"alice",
///         seat: ObjectId::new(4),
///         tone: greeter_v1::Tone::Warm,
///     };
///     assert_eq!(greet.opcode(), greeter_v1::req::GREET);
///     // The positional arguments the codec reads, in wire order.
///     greet.with_args(|_opcode, args| {
///         assert!(matches!(
///             args,
///             [Arg::Str(Some(_)), Arg::Object(4), Arg::Uint(greeter_v1::tone::WARM)]
///         ));
///     });
///     // Without `external`, the seat is a bare id (0 for none).
///     use greeter_again::greeter_v1 as again;
///     let plain: again::Request<'_, OwnedFd> = again::Request::Greet {
///         name: c"bob",
///         seat: 0,
///         tone: again::Tone::Plain,
///     };
///     assert_eq!(plain.name(), "greet");
///     assert_eq!(greeter_v1::req::DESTROY_SINCE, 2);
/// }
/// ```
#[proc_macro]
pub fn interfaces(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(code) => code,
        Err(message) => format!("::core::compile_error!({message:?});")
            .parse()
            .expect("a compile_error! invocation is valid Rust"),
    }
}

fn expand(input: TokenStream) -> Result<TokenStream, String> {
    let (file, options) = parse_input(input)?;
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or("waypass_scanner::interfaces! needs CARGO_MANIFEST_DIR (run it under cargo)")?;
    let path = dir.join(&file);
    let xml = std::fs::read_to_string(&path).map_err(|e| {
        chain(&model::ScanError::Read {
            path: path.display().to_string(),
            source: e,
        })
    })?;
    let protocol = model::parse(&xml).map_err(|e| format!("{file}: {}", chain(&e)))?;
    let mut code =
        emit::generate(&protocol, &options).map_err(|e| format!("{file}: {}", chain(&e)))?;
    let path_literal = path
        .to_str()
        .ok_or_else(|| format!("{}: the path is not UTF-8", path.display()))?;
    code.push_str(&format!(
        "const _: &[u8] = ::core::include_bytes!({path_literal:?});\n"
    ));
    code.parse()
        .map_err(|e| format!("{file}: waypass-scanner wrote invalid Rust: {e}"))
}

/// An error and its causes, joined by `: `.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Reads `"file.xml" (, key = [ ... ])*`.
fn parse_input(input: TokenStream) -> Result<(String, Options), String> {
    let mut parts = split_commas(input).into_iter();
    let file =
        match parts.next().as_deref() {
            Some([TokenTree::Literal(lit)]) => string_literal(&lit.to_string())?,
            _ => return Err(
                "expected the XML file as a string literal, e.g. interfaces!(\"my-protocol.xml\")"
                    .into(),
            ),
        };
    let mut options = Options::default();
    for part in parts {
        let (key, value) = match part.as_slice() {
            [] => continue, // a trailing comma
            [TokenTree::Ident(key), TokenTree::Punct(eq), value @ ..]
                if eq.as_char() == '=' && !value.is_empty() =>
            {
                (key.to_string(), value)
            }
            _ => {
                return Err("expected `only = [...]`, `external = [...]` or `crate = path`".into())
            }
        };
        let list = || match value {
            [TokenTree::Group(list)] if list.delimiter() == Delimiter::Bracket => Ok(list.stream()),
            _ => Err(format!("`{key} = [...]` takes a list in brackets")),
        };
        match key.as_str() {
            "only" => {
                let names = split_commas(list()?)
                    .into_iter()
                    .filter(|item| !item.is_empty())
                    .map(|item| match item.as_slice() {
                        [TokenTree::Ident(name)] => Ok(name.to_string()),
                        _ => Err("`only = [...]` takes interface names".to_owned()),
                    })
                    .collect::<Result<_, _>>()?;
                options.only = Some(names);
            }
            "external" => {
                for item in split_commas(list()?).into_iter().filter(|i| !i.is_empty()) {
                    match item.as_slice() {
                        [TokenTree::Ident(name), TokenTree::Punct(eq), path @ ..]
                            if eq.as_char() == '=' && !path.is_empty() =>
                        {
                            let path: TokenStream = path.iter().cloned().collect();
                            options.external.insert(name.to_string(), path.to_string());
                        }
                        _ => {
                            return Err(
                                "`external = [...]` takes `interface = path::to::module` pairs"
                                    .into(),
                            )
                        }
                    }
                }
            }
            "crate" => {
                let path: TokenStream = value.iter().cloned().collect();
                options.krate = Some(path.to_string());
            }
            other => {
                return Err(format!(
                    "unknown option `{other}` (expected `only`, `external` or `crate`)"
                ))
            }
        }
    }
    Ok((file, options))
}

/// The token trees between top-level commas.
fn split_commas(input: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut parts = vec![Vec::new()];
    for tree in input {
        match &tree {
            TokenTree::Punct(p) if p.as_char() == ',' => parts.push(Vec::new()),
            _ => parts.last_mut().expect("never empty").push(tree),
        }
    }
    parts
}

/// The value of a plain `"..."` literal (no escapes: it is a file path).
fn string_literal(token: &str) -> Result<String, String> {
    token
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains('\\'))
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a plain string literal, got {token}"))
}
