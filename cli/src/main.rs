//! fleetops: the command line for the people who write schedules. Wiring and
//! presentation only: parsing, timelines and the scheduler's tick are the
//! library's (`fleetops::schedule`, `fleetops::scheduler`), the very code the
//! instance-scheduler Lambda runs.

mod check;
mod output;
mod plan;
mod preview;
mod push;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jiff::Timestamp;

/// Exit code: the command did what it was asked and found nothing wrong.
pub const EXIT_OK: u8 = 0;
/// Exit code: the document is invalid, or what the command needed (the
/// schedules parameter, the fleet, a named schedule) failed or is missing.
pub const EXIT_PROBLEM: u8 = 1;
/// Exit code: the command line is wrong, FILE cannot be read, or the
/// environment the command reads (REGIONS, ...) is invalid.
pub const EXIT_USAGE: u8 = 2;

const ABOUT: &str =
    "Check, preview, plan and push instance-scheduler schedules before they reach the fleet";

const LONG_ABOUT: &str = "\
Check, preview, plan and push instance-scheduler schedules before they reach the fleet.

Schedules are one JSON document in Parameter Store (SCHEDULES_PARAMETER, default
/fleetops/schedules). fleetops reads it with the scheduler's own parser and
timeline, so what it prints is what the instance-scheduler Lambda does.

AWS access (plan, push) uses the SDK's default chain: AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL (a local emulator), credentials as for the AWS CLI.";

const EXAMPLES: &str = "\
Examples:
  fleetops check schedules.json
  fleetops preview schedules.json --schedule night-batch --from 2026-03-06T00:00:00Z --days 3
  fleetops plan --at 2026-11-26T18:05:00Z
  fleetops plan --file schedules.json --region eu-west-1 --region us-east-1 --json
  fleetops push schedules.json

Exit codes: 0 fine; 1 invalid document, or a failure reading or writing AWS;
2 usage error (bad flag, FILE unreadable, invalid environment).";

const CHECK_ABOUT: &str = "\
Validate a schedules document and list every error at once.

Each error names the schedule, the field path (periods[1].weekdays) and what was
expected; a document that is not JSON names the line and column. Nothing is
read from or written to AWS.

Exit codes: 0 every schedule is valid; 1 with every error; 2 usage error (FILE
missing or unreadable).";

const CHECK_EXAMPLES: &str = "\
Examples:
  fleetops check schedules.json
  aws ssm get-parameter --name /fleetops/schedules --query Parameter.Value --output text | fleetops check -";

const PREVIEW_ABOUT: &str = "\
Print when each schedule starts and stops its instances.

Transitions are computed by the scheduler's timeline, from --from for --days
days of 24 hours: each in the schedule's time zone and in UTC, with the field it
comes from. A time that daylight saving skips (DST gap: it takes effect at the
first instant after the gap) or repeats (DST fold: its first occurrence counts)
is marked. Skip dates, begin-only and end-only periods are taken as the
scheduler takes them.

--json prints one array, sorted by instant, of
  {\"schedule\", \"action\": \"start\"|\"stop\", \"at\": \"<UTC, Z>\", \"local\": \"<RFC 3339 with offset>\"}

Exit codes: 0; 1 the document, or a schedule to preview, is invalid or unknown
(the valid ones are still printed); 2 usage error.";

const PREVIEW_EXAMPLES: &str = "\
Examples:
  fleetops preview schedules.json
  fleetops preview schedules.json --schedule night-batch --from 2026-03-06T00:00:00Z --days 3
  fleetops preview schedules.json --schedule office-hours --schedule berlin-dev --days 14 --json";

const PLAN_ABOUT: &str = "\
Show what a scheduler tick at an instant would do to the fleet. Changes nothing.

Runs the scheduler's own tick in dry-run mode (the code the Lambda runs) against
the fleet of the current credentials: reads the instances tagged SCHEDULE_TAG
(default Schedule) in each region, and the schedules from --file or from
SCHEDULES_PARAMETER (default /fleetops/schedules). Starts, stops, tags nothing.

Prints a table of the instances it would start, stop or skip (and why); --json
prints the scheduler's own JSON output.

Exit codes: 0; 1 the schedules document cannot be read or is not valid, or a
region's fleet cannot be read (what could be read is still printed); 2 usage
error.";

const PLAN_EXAMPLES: &str = "\
Examples:
  fleetops plan
  fleetops plan --at 2026-11-26T18:05:00Z
  fleetops plan --file schedules.json --at 2026-11-27T09:05:00+09:00
  fleetops plan --region eu-west-1 --region us-east-1 --json
  AWS_ENDPOINT_URL=http://127.0.0.1:5000 fleetops plan   # a local emulator";

const PUSH_ABOUT: &str = "\
Validate a schedules document, then write it to Parameter Store.

The document is checked exactly as `fleetops check` does; an invalid document is
never written. A valid one is written as it is (PutParameter, overwrite) to
SCHEDULES_PARAMETER (default /fleetops/schedules), keeping the parameter's type
(a new parameter is a String), and the schedules added, removed and edited are
printed. A document identical to the one stored is not written again.

Exit codes: 0 written (or already there); 1 invalid document (nothing written)
or AWS error; 2 usage error.";

const PUSH_EXAMPLES: &str = "\
Examples:
  fleetops push schedules.json
  SCHEDULES_PARAMETER=/fleetops/staging/schedules AWS_PROFILE=staging fleetops push schedules.json";

#[derive(Debug, Parser)]
#[command(
    name = "fleetops",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a schedules document: every error at once, with its field path.
    #[command(long_about = CHECK_ABOUT, after_help = CHECK_EXAMPLES)]
    Check {
        /// The schedules document (JSON); `-` reads standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print each schedule's starts and stops, in its zone and in UTC, DST marked.
    #[command(long_about = PREVIEW_ABOUT, after_help = PREVIEW_EXAMPLES)]
    Preview {
        /// The schedules document (JSON); `-` reads standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Preview only this schedule (repeat for several; default: all).
        #[arg(long = "schedule", value_name = "NAME")]
        schedules: Vec<String>,
        /// Start of the preview: RFC 3339 with an offset
        /// (2026-03-06T00:00:00Z, 2026-03-06T09:00:00+09:00). Default: now.
        #[arg(long, value_name = "INSTANT", value_parser = parse_instant)]
        from: Option<Timestamp>,
        /// Length of the preview in days of 24 hours (1-366).
        #[arg(long, value_name = "N", default_value_t = 7,
              value_parser = clap::value_parser!(u16).range(1..=366))]
        days: u16,
        /// Print one JSON array of {schedule, action, at, local}, sorted by instant.
        #[arg(long)]
        json: bool,
    },
    /// Show what a scheduler tick would do to the fleet now (or --at). Changes nothing.
    #[command(long_about = PLAN_ABOUT, after_help = PLAN_EXAMPLES)]
    Plan {
        /// Use this schedules document instead of the one in Parameter Store.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The tick's instant: RFC 3339 with an offset. Default: now.
        #[arg(long, value_name = "INSTANT", value_parser = parse_instant)]
        at: Option<Timestamp>,
        /// A region to plan for (repeat for several). Default: REGIONS, else
        /// the region of the default chain (AWS_REGION, profile).
        #[arg(long = "region", value_name = "R")]
        regions: Vec<String>,
        /// Print the scheduler's JSON output instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate a schedules document, then write it to Parameter Store.
    #[command(long_about = PUSH_ABOUT, after_help = PUSH_EXAMPLES)]
    Push {
        /// The schedules document (JSON); `-` reads standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// An instant with an offset; a date-time without one is ambiguous.
fn parse_instant(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|_| {
        format!(
            "\"{text}\" is not an RFC 3339 instant with an offset; expected e.g. 2026-03-06T00:00:00Z or 2026-03-06T09:00:00+09:00"
        )
    })
}

/// Why a command could not do its job: the message for standard error and
/// the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub fn problem(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_PROBLEM,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version exit 0, usage errors 2 (clap's codes).
        Err(error) => error.exit(),
    };
    let result = match cli.command {
        Command::Check { file } => check::run(&file),
        Command::Preview {
            file,
            schedules,
            from,
            days,
            json,
        } => preview::run(&file, &schedules, from, days, json),
        Command::Plan {
            file,
            at,
            regions,
            json,
        } => in_runtime(plan::run(file.as_deref(), at, &regions, json)),
        Command::Push { file } => in_runtime(push::run(&file)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("fleetops: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn in_runtime(
    command: impl std::future::Future<Output = Result<u8, Failure>>,
) -> Result<u8, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::problem(format!("cannot start the async runtime: {e}")))?
        .block_on(command)
}
