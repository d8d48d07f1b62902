//! compliance-reporter: a nightly fleet compliance report to SNS (and S3).
//!
//! `gather` reads AWS into a [`FleetSnapshot`], `build_report` turns it into a
//! [`ComplianceReport`] (pure), `render` writes the text and JSON, `html` the
//! S3 page (with `headline` and the `trend` of previous nights, read by
//! `history`), `fit` makes it one SNS message, `publish` sends and stores it;
//! [`run_report`] does all of it.

pub mod build;
pub mod fanout;
pub mod fit;
pub mod gather;
pub mod headline;
mod history;
pub mod html;
pub mod org;
pub mod publish;
pub mod render;
mod run;
mod settings;
pub mod snapshot;
pub mod trend;

pub use build::{build_report, ComplianceReport, Previous, Standing};
pub use fit::{fit_message, FittedMessage, SNS_MAX_BYTES};
pub use headline::Headline;
pub use html::render_html;
pub use render::{render_json, render_text, subject};
pub use run::{run_report, Clients, ReportError, ReportOutput, Scope};
pub use settings::{check_topic_arn, ReporterSettings, DEFAULT_STATE_PARAMETER};
pub use snapshot::FleetSnapshot;
pub use trend::Trend;
