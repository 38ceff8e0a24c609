//! The code the docs show of a protocol of one's own is the code that
//! `make test` compiles and runs: every line of the Rust blocks of
//! README.md's "Your own protocol" and ARCHITECTURE.md's "Adding a
//! global" is a line of `examples/custom-protocol/src/bin/hello-*.rs`.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The ```rust blocks of `doc` between `heading` and the next heading of
/// the same level.
fn rust_blocks(doc: &str, heading: &str) -> Vec<String> {
    let level = heading.split(' ').next().expect("a heading");
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let section = &doc[start + 1..];
    let end = section[heading.len()..]
        .find(&format!("\n{level} "))
        .map_or(section.len(), |i| i + heading.len());
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section[..end].lines() {
        match (&mut current, line.trim_start().starts_with("```")) {
            (None, true) if line.contains("rust") => current = Some(String::new()),
            (Some(_), true) => blocks.push(current.take().expect("open")),
            (Some(block), false) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

/// Lines of `block` (trimmed, not blank, not comments) missing from `code`.
fn missing_lines(block: &str, code: &str) -> Vec<String> {
    let lines: Vec<&str> = code.lines().map(str::trim).collect();
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .filter(|l| !lines.contains(l))
        .map(str::to_owned)
        .collect()
}

fn example_code() -> String {
    read("examples/custom-protocol/src/bin/hello-server.rs")
        + &read("examples/custom-protocol/src/bin/hello-client.rs")
}

#[test]
fn the_readme_shows_the_example_crate_s_own_lines() {
    let blocks = rust_blocks(&read("README.md"), "## Your own protocol");
    assert!(!blocks.is_empty(), "no rust block");
    let code = example_code();
    for block in blocks {
        // The server's builder line is shown without the binary's signal
        // handling; every other line is verbatim.
        let block = block.replace(
            "let server = ServerBuilder::new(config).global(Greeter).build()?;",
            ".global(Greeter)",
        );
        let missing = missing_lines(&block, &code);
        assert!(missing.is_empty(), "not in the example: {missing:#?}");
    }
}

#[test]
fn architecture_s_recipe_shows_the_example_crate_s_own_lines() {
    let blocks = rust_blocks(&read("ARCHITECTURE.md"), "### Adding a global");
    assert_eq!(blocks.len(), 1, "one rust block");
    let missing = missing_lines(&blocks[0], &example_code());
    assert!(missing.is_empty(), "not in the example: {missing:#?}");
}

#[test]
fn a_line_that_drifted_is_found() {
    let missing = missing_lines("let x = 1;\nstruct Greeter;\n", "struct Greeter;\n");
    assert_eq!(missing, ["let x = 1;"]);
}
