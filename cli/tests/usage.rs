//! Help that is complete with examples, and exit codes for usage errors.

use crate::{fleetops, golden_dir, scratch};

#[test]
fn the_help_of_fleetops_and_of_each_subcommand_has_examples() {
    let dir = scratch("help");
    let top = fleetops(&dir, &["--help"]);
    assert_eq!(top.code, 0, "{}", top.stderr);
    for command in ["check", "preview", "plan", "push"] {
        assert!(
            top.stdout.contains(command),
            "--help lists {command}:\n{}",
            top.stdout
        );
        let help = fleetops(&dir, &[command, "--help"]);
        assert_eq!(help.code, 0, "{command} --help: {}", help.stderr);
        assert!(
            help.stdout.contains("Examples:")
                && help.stdout.contains(&format!("fleetops {command}")),
            "{command} --help has examples:\n{}",
            help.stdout
        );
        assert!(
            help.stdout.contains("Exit codes"),
            "{command} --help: exit codes\n{}",
            help.stdout
        );
    }
    let preview = fleetops(&dir, &["preview", "--help"]);
    for flag in [
        "--schedule <NAME>",
        "--from <INSTANT>",
        "--days <N>",
        "--json",
    ] {
        assert!(
            preview.stdout.contains(flag),
            "preview --help: {flag}\n{}",
            preview.stdout
        );
    }
    let plan = fleetops(&dir, &["plan", "--help"]);
    for flag in ["--file <FILE>", "--at <INSTANT>", "--region <R>", "--json"] {
        assert!(
            plan.stdout.contains(flag),
            "plan --help: {flag}\n{}",
            plan.stdout
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = golden_dir("check");
    for (args, hint) in [
        (&["check"][..], "FILE"),
        (
            &["check", "no-such-file.json"][..],
            "cannot read no-such-file.json",
        ),
        (&["preview", "valid.json", "--days", "0"][..], "--days"),
        (
            &["preview", "valid.json", "--from", "2026-03-08T02:30:00"][..],
            "offset",
        ),
        (&["plan", "--at", "tomorrow"][..], "--at"),
        (&["push"][..], "FILE"),
        (&["frobnicate"][..], "frobnicate"),
        (&[][..], "Usage"),
    ] {
        let run = fleetops(&dir, args);
        assert_eq!(
            run.code, 2,
            "fleetops {args:?}: {}{}",
            run.stdout, run.stderr
        );
        assert!(
            run.stderr.contains(hint),
            "fleetops {args:?} names {hint}: {}",
            run.stderr
        );
    }
}

#[test]
fn preview_of_an_unknown_or_invalid_schedule_exits_1_and_still_previews_the_others() {
    let dir = golden_dir("check");
    let unknown = fleetops(
        &dir,
        &[
            "preview",
            "valid.json",
            "--schedule",
            "nope",
            "--schedule",
            "office-hours",
            "--from",
            "2026-11-23T00:00:00Z",
            "--days",
            "1",
            "--json",
        ],
    );
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no schedule \"nope\""),
        "{}",
        unknown.stderr
    );
    let array: serde_json::Value = serde_json::from_str(&unknown.stdout).expect("JSON");
    assert_eq!(array.as_array().map(Vec::len), Some(2), "{array}");

    let invalid = fleetops(&dir, &["preview", "weekday-typo.json", "--days", "1"]);
    assert_eq!(invalid.code, 1);
    assert!(
        invalid.stderr.contains("periods[0].weekday"),
        "{}",
        invalid.stderr
    );

    let broken = fleetops(&dir, &["preview", "trailing-comma.json"]);
    assert_eq!(broken.code, 1);
    assert!(
        broken.stderr.contains("trailing comma"),
        "{}",
        broken.stderr
    );
    assert_eq!(broken.stdout, "");
}
