//! The XML's `<description>`s, turned into rustdoc.
//!
//! What it is: plain text to `#[doc = "..."]` attributes that rustdoc
//! renders as the XML author wrote them, without warnings. What it is not:
//! a Markdown converter; the XML's prose is plain text.
//!
//! # Implementation notes
//!
//! Protocol prose is written for people and for wayland-scanner's C
//! comments, so it is full of characters that mean something to rustdoc:
//! `[...]` would be taken as an intra-doc link, `<...>` as HTML, `*` and
//! `_` as emphasis, and a line indented by four spaces as a code block,
//! which rustdoc would then compile as a doc-test. Every line is therefore
//! trimmed and these characters escaped; paragraphs (blank lines) are kept.

use crate::model::Description;

/// Escapes one line of prose so that rustdoc shows it as written.
pub fn escape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for (i, c) in line.chars().enumerate() {
        match c {
            '\\' | '[' | ']' | '*' | '_' | '`' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '>' | '+' | '-' | '=' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            _ => out.push(c),
        }
    }
    out
}

/// The lines of a doc comment: the summary (capitalised, as a sentence),
/// then the body's paragraphs.
pub fn lines(description: &Description) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(summary) = &description.summary {
        out.push(sentence(summary.trim()));
    }
    if let Some(text) = &description.text {
        let mut blank = true; // after the summary, a paragraph break
        for line in text.lines().map(str::trim) {
            if line.is_empty() {
                blank = true;
                continue;
            }
            if blank && !out.is_empty() {
                out.push(String::new());
            }
            blank = false;
            out.push(escape(line));
        }
    }
    out
}

/// A summary as the first line of a doc comment: escaped, with a capital
/// letter and a full stop.
fn sentence(summary: &str) -> String {
    let mut chars = summary.chars();
    let mut s = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !s.is_empty() && !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    escape(&s)
}

/// `#[doc = "..."]` attributes for `lines`, each on its own line.
pub fn attrs(lines: &[String], indent: &str) -> String {
    lines
        .iter()
        .map(|l| format!("{indent}#[doc = {:?}]\n", format!(" {l}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_are_escaped() {
        assert_eq!(escape("see [1] and <fd>"), "see \\[1\\] and &lt;fd&gt;");
        assert_eq!(escape("a_b *c* `d`"), "a\\_b \\*c\\* \\`d\\`");
        assert_eq!(escape("# not a heading"), "\\# not a heading");
        assert_eq!(escape("- not a list"), "\\- not a list");
        assert_eq!(escape("x - y"), "x - y");
    }

    #[test]
    fn indented_text_becomes_trimmed_paragraphs() {
        let d = Description {
            summary: Some("create new seat".into()),
            text: Some(
                "\n      First line\n      goes on.\n\n          indented code?\n    ".into(),
            ),
        };
        assert_eq!(
            lines(&d),
            [
                "Create new seat.",
                "",
                "First line",
                "goes on.",
                "",
                "indented code?"
            ]
        );
    }

    #[test]
    fn attributes_are_valid_string_literals() {
        let a = attrs(&["say \"hi\" \\o/".into()], "    ");
        assert_eq!(a, "    #[doc = \" say \\\"hi\\\" \\\\o/\"]\n");
    }
}
