//! `fleetops check FILE`: the library's parser over a document, every error
//! at once.

use std::path::Path;

use crate::output::{judge, print, read_document, report, Verdict};
use crate::{Failure, EXIT_OK, EXIT_PROBLEM};

pub fn run(file: &Path) -> Result<u8, Failure> {
    let document = read_document(file)?;
    let verdict = judge(&document);
    print(&report(&document, &verdict))?;
    Ok(match verdict {
        Verdict::Valid(_) => EXIT_OK,
        Verdict::Invalid { .. } | Verdict::Broken(_) => EXIT_PROBLEM,
    })
}
