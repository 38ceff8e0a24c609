//! The repair of clap_complete's bash script for a binary whose name has a
//! hyphen, such as `waypass-client` (clap-rs/clap#6421, clap_complete
//! 4.6.12).
//!
//! What it is: [`repair`], a textual fix of one known defect, which does
//! nothing to a script without it (so an upstream fix makes it a no-op).
//! What it is not: a bash completion generator.
//!
//! # Implementation notes
//!
//! The script's loop over the words typed names the state it reaches by
//! escaping the binary name (`-` becomes `__`) and then each subcommand
//! (`-` becomes `__subcmd__`), joined by `__subcmd__`:
//! `waypass__client__subcmd__paste`. The `case` that completes each
//! state escapes the whole path in one pass, so the binary's own hyphen
//! becomes `__subcmd__` too: `waypass__subcmd__client__subcmd__paste)`.
//! No such arm ever matches, and completion stops after the subcommand
//! (`waypass-client paste --<TAB>` offers nothing). Only those labels start
//! with the binary name escaped the second way, so replacing that prefix
//! with the first makes every arm match its state again.

/// The separator clap_complete puts between the commands of a path.
const SEP: &str = "__subcmd__";

/// `script` (clap_complete's bash script for the binary `bin`) with its
/// subcommands' case labels spelled as its loop spells them.
pub fn repair(script: &str, bin: &str) -> String {
    let wrong = format!("{}{SEP}", bin.replace('-', SEP));
    let right = format!("{}{SEP}", bin.replace('-', "__"));
    script.replace(&wrong, &right)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_case_labels_of_a_hyphenated_binary_take_the_loops_spelling() {
        let broken = "cmd=\"my__app__subcmd__thunder\"\n    my__subcmd__app__subcmd__thunder)\n";
        assert_eq!(
            repair(broken, "my-app"),
            "cmd=\"my__app__subcmd__thunder\"\n    my__app__subcmd__thunder)\n"
        );
    }

    #[test]
    fn a_name_without_a_hyphen_is_left_alone() {
        let script = "cmd=\"app__subcmd__thunder\"\n    app__subcmd__thunder)\n";
        assert_eq!(repair(script, "app"), script);
    }
}
