//! HTML reports of finished jobs: one self-contained page (inline SVG charts,
//! inline CSS, one inline script that sorts tables, no link to anything
//! outside), built from a job's stored result. Pure: a result in, a string out.

pub mod frontier;
pub mod html;
pub mod optimize;
pub mod simulate;
pub mod svg;

use crate::service::jobs::{JobKind, JobRecord, JobState};

/// Why a job has no report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The job has not succeeded (its state says why).
    #[error("job {job_id} is {state}, and only a succeeded job has a report")]
    NotFinished {
        /// The job.
        job_id: String,
        /// Its state.
        state: &'static str,
    },
    /// This kind of job has no report (kept for kinds added later; every
    /// kind today has one).
    #[error("{kind} jobs have no report")]
    Unsupported {
        /// The kind.
        kind: &'static str,
    },
    /// The stored result does not decode as this kind's result.
    #[error("job {job_id}: the stored result does not decode: {reason}")]
    Undecodable {
        /// The job.
        job_id: String,
        /// The decoder's complaint.
        reason: String,
    },
}

/// Renders the report of a succeeded job.
pub fn render(job: &JobRecord) -> Result<String, ReportError> {
    if job.state != JobState::Succeeded {
        return Err(ReportError::NotFinished {
            job_id: job.job_id.clone(),
            state: job.state.name(),
        });
    }
    let undecodable = |e: serde_json::Error| ReportError::Undecodable {
        job_id: job.job_id.clone(),
        reason: e.to_string(),
    };
    match job.kind {
        JobKind::Simulate => Ok(simulate::render(
            &job.job_id,
            &serde_json::from_str(&job.result_json).map_err(undecodable)?,
        )),
        JobKind::Frontier => Ok(frontier::render(
            &job.job_id,
            &serde_json::from_str(&job.result_json).map_err(undecodable)?,
        )),
        JobKind::Optimize => Ok(optimize::render(
            &job.job_id,
            &serde_json::from_str(&job.result_json).map_err(undecodable)?,
        )),
    }
}
