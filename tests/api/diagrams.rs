//! Rendering diagrams with the real tools when they are installed (`.ci/run` installs
//! graphviz); without them the text checks in the tests still run and this says so.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Renders DOT source with Graphviz `dot` to SVG and asserts success.
pub fn assert_renders_with_dot(source: &str) {
    let Ok(mut child) = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        let _ = writeln!(
            std::io::stderr(),
            "note: Graphviz `dot` is not installed; DOT rendering not checked"
        );
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(source.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "dot failed: {}\n{source}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("<svg"));
}
