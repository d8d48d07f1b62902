//! `fleetops push FILE`: validate, then PutParameter (overwrite) to the
//! scheduler's schedules parameter, and say which schedules changed.

use std::path::Path;

use aws_sdk_ssm::types::ParameterType;
use fleetops::aws::{error_text, load_sdk_config};
use fleetops::schedule::{parse_schedules, ScheduleChanges, Schedules};
use fleetops::scheduler::SchedulerSettings;
use fleetops::ssm::{get_parameter, ParameterError};

use crate::output::{judge, print, read_document, report, Verdict};
use crate::{Failure, EXIT_OK, EXIT_PROBLEM};

pub async fn run(file: &Path) -> Result<u8, Failure> {
    let document = read_document(file)?;
    let verdict = judge(&document);
    let new = match verdict {
        Verdict::Valid(schedules) => schedules,
        Verdict::Invalid { .. } | Verdict::Broken(_) => {
            eprint!("{}", report(&document, &verdict));
            eprintln!(
                "fleetops: {} is not valid: nothing was written to Parameter Store",
                document.label
            );
            return Ok(EXIT_PROBLEM);
        }
    };

    let sdk_config = load_sdk_config().await;
    let own_region = sdk_config.region().map(ToString::to_string);
    if own_region.is_none() {
        return Err(Failure::usage(
            "no region: set AWS_REGION (or a region in the AWS profile)",
        ));
    }
    // The parameter the scheduler reads, named and defaulted as it does.
    let settings =
        SchedulerSettings::from_env(|name| std::env::var(name).ok(), own_region.as_deref())
            .map_err(|e| Failure::usage(e.to_string()))?;
    let name = &settings.schedules_parameter;
    let ssm = aws_sdk_ssm::Client::new(&sdk_config);

    let current = match get_parameter(&ssm, name).await {
        Ok(text) => Some(text),
        Err(ParameterError::Missing { .. }) => None,
        Err(ParameterError::Empty { .. }) => Some(String::new()),
        Err(error) => {
            return Err(Failure::problem(format!(
                "{}; nothing was written",
                error_text(&error)
            )))
        }
    };
    if current.as_deref() == Some(document.text.as_str()) {
        print(&format!(
            "{name} already holds {}: nothing to write\n",
            document.label
        ))?;
        return Ok(EXIT_OK);
    }
    let mut notes = Vec::new();
    let old = match current.as_deref().map(parse_schedules) {
        None => Schedules::default(),
        Some(Ok(old)) => old,
        Some(Err(error)) => {
            notes.push(format!(
                "the document it replaces was not usable ({error}): every schedule counts as added"
            ));
            Schedules::default()
        }
    };
    let changes = old.changes_to(&new);

    let mut put = ssm
        .put_parameter()
        .name(name)
        .value(&document.text)
        .overwrite(true);
    if current.is_none() {
        // Overwriting without a type keeps the parameter's own (String or
        // SecureString); a new parameter needs one.
        put = put.r#type(ParameterType::String);
    }
    let output = put.send().await.map_err(|error| {
        Failure::problem(format!(
            "writing {name} failed: {}; nothing was written",
            error_text(&error)
        ))
    })?;

    let verb = if current.is_none() {
        "Created"
    } else {
        "Updated"
    };
    let mut text = format!(
        "{verb} {name} (version {}) from {}: {}\n",
        output.version(),
        document.label,
        counts(&changes)
    );
    for (what, names) in [
        ("added", &changes.added),
        ("removed", &changes.removed),
        ("edited", &changes.edited),
        ("unchanged", &changes.unchanged),
    ] {
        if !names.is_empty() {
            text.push_str(&format!(
                "  {:<10} {}\n",
                format!("{what}:"),
                names.join(", ")
            ));
        }
    }
    if changes.is_empty() && current.is_some() && notes.is_empty() {
        notes.push("no schedule changed: only the document's layout did".into());
    }
    for note in notes {
        text.push_str(&format!("  note: {note}\n"));
    }
    print(&text)?;
    Ok(EXIT_OK)
}

fn counts(changes: &ScheduleChanges) -> String {
    format!(
        "{} added, {} removed, {} edited, {} unchanged",
        changes.added.len(),
        changes.removed.len(),
        changes.edited.len(),
        changes.unchanged.len()
    )
}
