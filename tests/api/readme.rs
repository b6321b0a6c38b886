//! The README's quick start, run as written against a fresh server: the blocks marked
//! `<!-- quickstart -->` in one bash session (`set -euo pipefail`, every request `curl -fsS`),
//! after starting the binary the way the block marked `<!-- quickstart:server -->` does. Only
//! the base URL is substituted (the port is free, not 8080); the test appends progress markers
//! and one probe printing the README's `$ID`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{free_port, stageflow, wait_until_ready};

const README: &str = include_str!("../../README.md");
const BASE_URL: &str = "http://localhost:8080";

/// The fenced blocks that follow `marker`, in order.
fn blocks_after(marker: &str) -> Vec<&'static str> {
    README
        .split(marker)
        .skip(1)
        .map(|rest| {
            let body = rest
                .trim_start()
                .strip_prefix("```sh\n")
                .unwrap_or_else(|| panic!("{marker} is not followed by a ```sh block"));
            &body[..body.find("```").unwrap()]
        })
        .collect()
}

/// The operator password the README's server command sets.
fn operator_password(server: &str) -> &str {
    assert!(server.contains("-- serve"), "{server}");
    let value = server.split("STAGEFLOW_OPERATOR_PASSWORD=").nth(1);
    assert!(
        value.is_some(),
        "the server block sets STAGEFLOW_OPERATOR_PASSWORD"
    );
    let quoted = value.unwrap().strip_prefix('\'');
    assert!(quoted.is_some(), "the password is single-quoted");
    let quoted = quoted.unwrap();
    &quoted[..quoted.find('\'').unwrap()]
}

#[actix_web::test]
async fn the_readme_quick_start_works_as_written() {
    let server = blocks_after("<!-- quickstart:server -->\n");
    assert_eq!(server.len(), 1);
    let steps = blocks_after("<!-- quickstart -->\n");
    assert!(steps.len() >= 5, "{steps:?}");
    assert_eq!(README.matches(&format!("SF={BASE_URL}")).count(), 1);

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = stageflow(dir.path())
        .arg("serve")
        .env("STAGEFLOW_OPERATOR_PASSWORD", operator_password(server[0]))
        .env("STAGEFLOW_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    wait_until_ready(&client, &base).await;

    let mut script = String::from("set -euo pipefail\n");
    for (i, step) in steps.iter().enumerate() {
        script.push_str(&step.replace(BASE_URL, &base));
        script.push_str(&format!("\necho '::step {i} done'\n"));
    }
    // A probe after the last step: the id of the ticket the README filed.
    script.push_str("echo \"::ticket $ID\"\n");
    let mut bash = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while bash.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            bash.kill().unwrap();
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let output = bash.wait_with_output().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the quick start failed after:\n{stdout}\nstderr:\n{stderr}"
    );
    for i in 0..steps.len() {
        assert!(stdout.contains(&format!("::step {i} done")), "{stdout}");
    }
    // The installed processes, the ticket found by keyword and filter, and read with the
    // adapter's API key in the state the agent moved it to.
    assert!(
        stdout.contains("['itil_change', 'itil_problem']"),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let ticket = lines
        .iter()
        .find_map(|line| line.strip_prefix("::ticket "))
        .unwrap();
    assert!(uuid::Uuid::parse_str(ticket).is_ok(), "{stdout}");
    assert!(
        lines.contains(&ticket),
        "the search did not print the filed ticket {ticket}:\n{stdout}"
    );
    let last = lines
        .iter()
        .rev()
        .find(|line| !line.is_empty() && !line.starts_with("::"))
        .unwrap();
    assert_eq!(*last, "in_triage", "{stdout}");
}
