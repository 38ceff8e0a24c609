//! XML names as Rust names: modules and fields (`r#type`), constants
//! (`_90`), types and variants (`WlSeat`, `GetRegistry`).
//!
//! What it is: pure string functions the emitters share. What it is not:
//! a check that two names do not collide; [`crate::emit`] does that where
//! a collision is possible.

/// An XML name as a module, field or binding name: raw when it is a Rust
/// keyword, with a trailing `_` for the few keywords that cannot be raw.
pub fn ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "do", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type",
        "unsafe", "use", "where", "while", "yield",
    ];
    if matches!(name, "self" | "Self" | "super" | "crate" | "_") {
        format!("{name}_")
    } else if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    }
}

/// An XML name as a constant: upper case, `_`-prefixed if it starts with
/// a digit (`wl_output.transform`'s `90`).
pub fn constant(name: &str) -> String {
    digit_guard(name.to_uppercase())
}

/// An XML name as a type or variant: `wl_seat` → `WlSeat`,
/// `get_registry` → `GetRegistry`, `90` → `_90`, `flipped_90` →
/// `Flipped90`.
pub fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split('_').filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    digit_guard(out)
}

fn digit_guard(name: String) -> String {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ident("type"), "r#type");
        assert_eq!(ident("self"), "self_");
        assert_eq!(ident("serial"), "serial");
        assert_eq!(constant("90"), "_90");
        assert_eq!(constant("get_registry"), "GET_REGISTRY");
        assert_eq!(camel("wl_seat"), "WlSeat");
        assert_eq!(
            camel("zwlr_data_control_manager_v1"),
            "ZwlrDataControlManagerV1"
        );
        assert_eq!(camel("axis_value120"), "AxisValue120");
        assert_eq!(camel("90"), "_90");
        assert_eq!(camel("flipped_90"), "Flipped90");
    }
}
