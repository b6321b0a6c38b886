//! `stageflow::scanner` against a real clamd (a private one per test, see clamd.rs), and
//! against sockets where nothing or nobody answers.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use stageflow::scanner::{ScanError, Scanner, ScannerAddress, Verdict};

use crate::clamd::{ClamdProcess, EICAR, STREAM_MAX_BYTES};

/// Text-like bytes that match no signature.
fn clean(len: usize) -> Vec<u8> {
    b"Stageflow test content, nothing to see here.\r\n"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

#[test]
fn clean_content_is_clean_and_eicar_is_found() {
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let scanner = clamd.scanner();
    assert_eq!(scanner.scan(&clean(2_000)).unwrap(), Verdict::Clean);
    assert_eq!(scanner.scan(b"").unwrap(), Verdict::Clean);
    assert_eq!(
        scanner.scan(EICAR).unwrap(),
        Verdict::Infected {
            signature: "Eicar-Test-Signature.UNOFFICIAL".to_owned()
        }
    );
    // One MiB crosses many 64 KiB chunks.
    assert_eq!(scanner.scan(&clean(1 << 20)).unwrap(), Verdict::Clean);
    scanner.ping().unwrap();
    let version = scanner.version().unwrap();
    assert!(version.starts_with("ClamAV "), "{version}");
}

#[test]
fn content_over_the_limit_is_too_large_here_and_at_clamd() {
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let ours = Scanner::new(clamd.address(), Duration::from_secs(10), 1_000);
    let error = ours.scan(&clean(1_001)).unwrap_err();
    assert_eq!(error, ScanError::TooLarge { limit: 1_000 });
    assert!(!error.is_transient());
    assert_eq!(ours.scan(&clean(1_000)).unwrap(), Verdict::Clean);

    // A client allowing more than clamd's StreamMaxLength gets clamd's refusal as TooLarge.
    let generous = Scanner::new(
        clamd.address(),
        Duration::from_secs(30),
        2 * STREAM_MAX_BYTES,
    );
    let error = generous.scan(&clean(STREAM_MAX_BYTES + 1)).unwrap_err();
    assert_eq!(
        error,
        ScanError::TooLarge {
            limit: 2 * STREAM_MAX_BYTES
        }
    );
    // The scanner is still fine afterwards.
    assert_eq!(
        clamd.scanner().scan(EICAR).unwrap(),
        Verdict::Infected {
            signature: "Eicar-Test-Signature.UNOFFICIAL".to_owned()
        }
    );
}

#[test]
fn a_stopped_scanner_is_transient_and_scans_again_once_restarted() {
    let Some(mut clamd) = ClamdProcess::start_private() else {
        return;
    };
    let scanner = clamd.scanner();
    assert_eq!(scanner.scan(&clean(2_000)).unwrap(), Verdict::Clean);
    clamd.stop();
    let error = scanner.scan(&clean(2_000)).unwrap_err();
    assert!(matches!(error, ScanError::Unreachable(_)), "{error:?}");
    assert!(error.is_transient());
    let text = error.to_string();
    assert!(
        !text.contains("clamd.sock") && !text.contains("/tmp"),
        "{text}"
    );
    assert!(matches!(scanner.ping(), Err(ScanError::Unreachable(_))));
    clamd.start();
    assert_eq!(scanner.scan(&clean(2_000)).unwrap(), Verdict::Clean);
    assert!(matches!(
        scanner.scan(EICAR).unwrap(),
        Verdict::Infected { .. }
    ));
}

#[test]
fn an_address_nothing_listens_on_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Scanner::new(
        ScannerAddress::Unix(dir.path().join("no-clamd.sock")),
        Duration::from_secs(5),
        1_000,
    );
    let error = missing.scan(b"hello").unwrap_err();
    assert!(matches!(error, ScanError::Unreachable(_)), "{error:?}");
    assert!(!error.to_string().contains("no-clamd"), "{error}");
    assert!(error.is_transient());

    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = Scanner::new(
        format!("tcp://127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(5),
        1_000,
    );
    assert!(matches!(refused.ping(), Err(ScanError::Unreachable(_))));
    assert!(matches!(
        refused.scan(b"hello"),
        Err(ScanError::Unreachable(_))
    ));
}

#[test]
fn a_scanner_that_never_answers_times_out_quickly() {
    // The kernel accepts connections into the backlog; nobody ever reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address: ScannerAddress = listener.local_addr().unwrap().to_string().parse().unwrap();
    let silent = Scanner::new(address, Duration::from_millis(300), 8 << 20);
    let times_out = |what: &str, call: &dyn Fn() -> Result<Verdict, ScanError>| {
        let started = Instant::now();
        let error = call().unwrap_err();
        assert_eq!(error, ScanError::Timeout, "{what}");
        assert!(error.is_transient());
        assert!(started.elapsed() < Duration::from_secs(3), "{what}");
    };
    times_out("ping", &|| silent.ping().map(|()| Verdict::Clean));
    times_out("small scan", &|| silent.scan(&clean(2_000)));
    // Eight MiB fill the socket buffers, so this one times out while writing.
    times_out("large scan", &|| silent.scan(&clean(8 << 20)));
    drop(listener);
}

/// Not a timed assertion: prints scans per second for docs/PERFORMANCE.md
/// (`cargo test --test api scanner_throughput -- --nocapture`).
#[test]
#[ignore = "a measurement, run by hand: cargo test --test api scanner_throughput -- --ignored --nocapture"]
fn scanner_throughput() {
    let Some(clamd) = ClamdProcess::start_private() else {
        return;
    };
    let scanner = clamd.scanner();
    for (label, size, rounds) in [
        ("2 KB message", 2_000, 300),
        ("1 MiB attachment", 1 << 20, 30),
    ] {
        let content = clean(size);
        let started = Instant::now();
        for _ in 0..rounds {
            assert_eq!(scanner.scan(&content).unwrap(), Verdict::Clean);
        }
        let elapsed = started.elapsed();
        println!(
            "clamd INSTREAM, {label}: {rounds} scans in {:.2} s = {:.0} scans/s",
            elapsed.as_secs_f64(),
            f64::from(rounds) / elapsed.as_secs_f64()
        );
    }
}
