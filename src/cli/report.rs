//! `spares report JOB -o report.html`: a job's HTML report, streamed from
//! the server in chunks and written whole (FILE.partial, then renamed).

use super::client::{ClientError, Target, connect};
use crate::pb;
use std::path::Path;
use tokio_stream::StreamExt;

/// Most bytes of a report the client accepts (a hang and memory guard; real
/// reports are a few hundred kilobytes).
pub const MAX_REPORT_BYTES: usize = 256 * 1024 * 1024;

/// Fetches a job's report.
pub async fn fetch(server: &Target, job_id: &str) -> Result<Vec<u8>, ClientError> {
    let mut clients = connect(server).await?;
    let mut stream = clients
        .planning
        .get_job_report(pb::GetJobReportRequest {
            job_id: job_id.to_string(),
        })
        .await?
        .into_inner();
    let mut html = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if html.is_empty() && chunk.total_bytes > 0 {
            html.reserve(
                usize::try_from(chunk.total_bytes)
                    .unwrap_or(0)
                    .min(MAX_REPORT_BYTES),
            );
        }
        html.extend_from_slice(&chunk.data);
        if html.len() > MAX_REPORT_BYTES {
            return Err(ClientError::Usage(format!(
                "the report of {job_id} is larger than {MAX_REPORT_BYTES} bytes"
            )));
        }
    }
    Ok(html)
}

/// `spares report JOB -o FILE`.
pub async fn report(server: &Target, job_id: &str, out: &Path) -> Result<String, ClientError> {
    let html = fetch(server, job_id).await?;
    let partial = out.with_extension("partial");
    let io = |e: std::io::Error| ClientError::Usage(format!("{}: {e}", out.display()));
    std::fs::write(&partial, &html).map_err(io)?;
    std::fs::rename(&partial, out).map_err(io)?;
    Ok(format!(
        "wrote the report of {job_id} ({} bytes) to {}\n",
        html.len(),
        out.display()
    ))
}
