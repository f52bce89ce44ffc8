//! `report.json`: the report model as pretty-printed JSON.

use crate::BenchError;
use crate::report::Report;

/// The report as JSON text.
///
/// # Errors
///
/// [`BenchError::Json`] if serialisation fails.
pub fn render(report: &Report) -> Result<String, BenchError> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}
