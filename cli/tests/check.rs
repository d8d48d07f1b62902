//! Golden tests of `fleetops check` on the mistakes people make when they
//! write schedules by hand. Set `UPDATE_GOLDEN=1` to rewrite the `.out` files
//! after an intended change of wording (and read the diff).

use crate::{fleetops, golden_dir};

/// Given a document in tests/golden/check, when checked, then stdout is the
/// `.out` file next to it, word for word, and the exit code is as listed.
fn assert_golden(name: &str, expected_code: i32) {
    let dir = golden_dir("check");
    let run = fleetops(&dir, &["check", &format!("{name}.json")]);
    let golden = dir.join(format!("{name}.out"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &run.stdout).expect("writing the golden file");
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", golden.display()));
    assert_eq!(
        run.stdout, expected,
        "check {name}.json: stdout differs from {name}.out"
    );
    assert_eq!(
        run.code, expected_code,
        "check {name}.json: exit code\n{}",
        run.stdout
    );
    assert_eq!(
        run.stderr, "",
        "check {name}.json prints its report on stdout only"
    );
}

#[test]
fn a_valid_document_exits_0_and_names_its_schedules() {
    assert_golden("valid", 0);
}

#[test]
fn nine_oclock_without_a_leading_zero_is_refused_with_the_field_path() {
    assert_golden("nine-oclock", 1);
}

#[test]
fn kst_is_not_a_time_zone_name_and_the_error_says_which_is() {
    assert_golden("kst", 1);
}

#[test]
fn a_weekday_field_typo_and_a_weekday_name_typo_are_both_named() {
    assert_golden("weekday-typo", 1);
}

#[test]
fn a_trailing_comma_points_at_the_comma() {
    assert_golden("trailing-comma", 1);
}

#[test]
fn a_document_without_the_schedules_key_is_refused_as_a_whole() {
    assert_golden("no-schedules-key", 1);
}

#[test]
fn every_error_of_every_schedule_is_listed_at_once() {
    assert_golden("every-mistake", 1);
    // Given two broken schedules with nine mistakes, then nine error lines.
    let run = fleetops(&golden_dir("check"), &["check", "every-mistake.json"]);
    let errors = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("every-mistake.json: schedule \""))
        .count();
    assert_eq!(errors, 9, "{}", run.stdout);
}

#[test]
fn standard_input_is_read_for_a_dash() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetops"))
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running fleetops");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"schedules": {"s": {"periods": [{"begin": "9:00"}]}}}"#)
        .expect("writing stdin");
    let output = child.wait_with_output().expect("fleetops ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("<stdin>: schedule \"s\": periods[0].begin: \"9:00\" is not a time"),
        "{stdout}"
    );
}
