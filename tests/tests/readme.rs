//! The README shows the core's run loop; the same code is in the `ftps_proto` crate docs
//! (`crates/ftps-proto/docs/run_loop.md`). Both compile as doctests; this keeps them identical.

fn rust_block_with(text: &str, marker: &str) -> String {
    let mut in_block = false;
    let mut block = String::new();
    for line in text.lines() {
        if line.starts_with("```rust") {
            in_block = true;
            block.clear();
            continue;
        }
        if in_block && line.starts_with("```") {
            in_block = false;
            if block.contains(marker) {
                return block;
            }
            continue;
        }
        if in_block {
            block.push_str(line);
            block.push('\n');
        }
    }
    panic!("no rust block containing {marker:?}");
}

#[test]
fn readme_run_loop_is_the_crate_docs_run_loop() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let docs =
        std::fs::read_to_string(format!("{root}/crates/ftps-proto/docs/run_loop.md")).unwrap();
    let marker = "fn working_directory(";
    let in_readme = rust_block_with(&readme, marker);
    assert!(in_readme.contains("session.poll_output(&mut out, now())"));
    assert_eq!(in_readme, rust_block_with(&docs, marker));
}
