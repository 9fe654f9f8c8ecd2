//! The committed corpus of every fuzz target, run through the target in `cargo test`: each
//! seed, and each input that once broke a rule (named `crash-…` or `regression-…`), keeps
//! its rule. `cargo xtask fuzz` explores beyond it.

use std::path::Path;

#[test]
fn every_input_of_the_corpus_keeps_its_targets_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in oytel_fuzz::TARGETS {
        let folder = root.join(name);
        let mut inputs = 0;
        for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{folder:?}: {e}")) {
            let path = entry.expect("a corpus entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {path:?} breaks the target's rule");
            inputs += 1;
        }
        assert!(
            inputs >= 3,
            "{name}: the corpus has {inputs} inputs; seed it"
        );
    }
}
