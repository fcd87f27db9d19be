//! Client side of long jobs: submit, follow with a progress bar, print the result.

use super::client::{ClientError, Target};
use crate::pb;
use crate::pb::planning_service_client::PlanningServiceClient;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt;

/// Follows a job until it ends, drawing a progress bar on stderr (hidden when
/// stderr is not a terminal), and returns the final record.
pub async fn follow(
    planning: &mut PlanningServiceClient<super::client::AuthChannel>,
    job: pb::Job,
) -> Result<pb::Job, ClientError> {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:40}] {percent:>3}% {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} (seed {})", job.job_id, job.seed));
    let mut stream = planning
        .watch_job(pb::WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await?
        .into_inner();
    let mut last = job;
    while let Some(update) = stream.next().await {
        let update = update?;
        bar.set_position(forward(bar.position(), update.progress));
        bar.set_message(progress_message(&update));
        last = update;
    }
    bar.finish_and_clear();
    if last.result_json.is_empty() && last.result_bytes > 0 {
        last.result_json = full_result(planning, &last).await?;
    }
    Ok(last)
}

/// The bar's position (per mille) for `progress`: never behind `shown`, so
/// the bar only moves forward even if an update arrives out of order.
pub fn forward(shown: u64, progress: f64) -> u64 {
    let position = if progress.is_finite() {
        (progress.clamp(0.0, 1.0) * 1000.0).round() as u64
    } else {
        0
    };
    position.max(shown)
}

/// The full result of a succeeded job: inline in the job, or paged with
/// GetJobResult when it was too large to send inline.
pub async fn full_result(
    planning: &mut PlanningServiceClient<super::client::AuthChannel>,
    job: &pb::Job,
) -> Result<String, ClientError> {
    if !job.result_json.is_empty() || job.result_bytes == 0 {
        return Ok(job.result_json.clone());
    }
    let mut bytes = Vec::new();
    let mut offset = 0;
    loop {
        let page = planning
            .get_job_result(pb::GetJobResultRequest {
                job_id: job.job_id.clone(),
                offset,
                max_bytes: 0,
            })
            .await?
            .into_inner();
        bytes.extend_from_slice(&page.data);
        if page.data.is_empty() || page.next_offset >= page.total_bytes {
            break;
        }
        offset = page.next_offset;
    }
    String::from_utf8(bytes)
        .map_err(|e| ClientError::Usage(format!("{}: the result is not UTF-8: {e}", job.job_id)))
}

/// `--csv DIR`: pages a succeeded job's full result with GetJobResult
/// (even when it came inline) and writes its tables as CSV files; returns
/// what it wrote. Nothing for a job that did not succeed.
///
/// # Errors
/// The server's refusal, or a file that cannot be written.
pub async fn write_csv(
    planning: &mut PlanningServiceClient<super::client::AuthChannel>,
    job: &pb::Job,
    dir: &std::path::Path,
) -> Result<String, ClientError> {
    if job.state != pb::JobState::Succeeded as i32 {
        return Ok(String::new());
    }
    let paged = pb::Job {
        result_json: String::new(),
        ..job.clone()
    };
    let json = full_result(planning, &paged).await?;
    super::csv_tables::save(dir, "result", &json).map_err(ClientError::Usage)
}

/// `spares jobs`: every job (or those of a kind, state and owner), oldest first.
pub async fn list(
    server: &Target,
    kind: Option<&str>,
    state: Option<&str>,
    owner: Option<&str>,
) -> Result<String, ClientError> {
    let kind = match kind.map(str::to_ascii_lowercase).as_deref() {
        None => pb::JobKind::Unspecified,
        Some("simulate") => pb::JobKind::Simulate,
        Some("optimize") => pb::JobKind::Optimize,
        Some("frontier") => pb::JobKind::Frontier,
        Some(other) => {
            return Err(ClientError::Usage(format!(
                "--kind: unknown `{other}` (simulate, optimize, frontier)"
            )));
        }
    };
    let state = match state.map(str::to_ascii_lowercase).as_deref() {
        None => pb::JobState::Unspecified,
        Some("queued") => pb::JobState::Queued,
        Some("running") => pb::JobState::Running,
        Some("succeeded") => pb::JobState::Succeeded,
        Some("failed") => pb::JobState::Failed,
        Some("cancelled") => pb::JobState::Cancelled,
        Some(other) => {
            return Err(ClientError::Usage(format!(
                "--state: unknown `{other}` (queued, running, succeeded, failed, cancelled)"
            )));
        }
    };
    let mut clients = super::client::connect(server).await?;
    let mut table = super::table::Table::new(&[
        "job", "kind", "state", "progress", "created", "owner", "seed", "result", "message",
    ]);
    let jobs = super::client::fetch_all(0, async |page| {
        let reply = clients
            .planning
            .list_jobs(pb::ListJobsRequest {
                page: Some(page),
                kind: kind as i32,
                state: state as i32,
                owner: owner.unwrap_or_default().to_string(),
            })
            .await?
            .into_inner();
        Ok::<_, ClientError>((reply.jobs, reply.next_page_token))
    })
    .await?;
    for job in &jobs {
        table.row(vec![
            job.job_id.clone(),
            kind_name(job.kind).to_string(),
            state_name(job.state).to_string(),
            format!("{:.0}%", job.progress * 100.0),
            job.created_at
                .as_ref()
                .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
                .map_or("-".into(), |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()),
            if job.owner.is_empty() {
                "-".into()
            } else {
                job.owner.clone()
            },
            job.seed.to_string(),
            if job.result_bytes > 0 {
                format!("{} bytes", job.result_bytes)
            } else {
                "-".into()
            },
            job.message.chars().take(60).collect(),
        ]);
    }
    Ok(table.render())
}

fn kind_name(kind: i32) -> &'static str {
    match pb::JobKind::try_from(kind) {
        Ok(pb::JobKind::Simulate) => "simulate",
        Ok(pb::JobKind::Optimize) => "optimize",
        Ok(pb::JobKind::Frontier) => "frontier",
        _ => "?",
    }
}

fn state_name(state: i32) -> &'static str {
    match pb::JobState::try_from(state) {
        Ok(pb::JobState::Queued) => "queued",
        Ok(pb::JobState::Running) => "running",
        Ok(pb::JobState::Succeeded) => "succeeded",
        Ok(pb::JobState::Failed) => "failed",
        Ok(pb::JobState::Cancelled) => "cancelled",
        _ => "?",
    }
}

/// What the progress bar says beside the bar: the job's message and, once
/// the server has an estimate, the time left (`about 2m 05s left`).
pub fn progress_message(job: &pb::Job) -> String {
    match job.seconds_left {
        Some(left) if left.is_finite() && left >= 0.5 => {
            format!("{} (about {} left)", job.message, duration(left))
        }
        _ => job.message.clone(),
    }
}

/// A duration in seconds as `45s`, `2m 05s` or `1h 02m`.
fn duration(seconds: f64) -> String {
    let total = seconds.round().min(f64::from(u32::MAX)) as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m"),
    }
}

/// Turns a finished job into output: the summary, or the JSON result, or an error.
pub fn render(job: &pb::Job, json: bool) -> Result<String, ClientError> {
    match pb::JobState::try_from(job.state) {
        Ok(pb::JobState::Succeeded) if json => Ok(format!("{}\n", job.result_json)),
        Ok(pb::JobState::Succeeded) => Ok(format!("{}\n{}", job.job_id, job.summary)),
        Ok(pb::JobState::Cancelled) => {
            Err(ClientError::Usage(format!("{} was cancelled", job.job_id)))
        }
        _ => Err(ClientError::Usage(format!(
            "{} failed: {}",
            job.job_id, job.message
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_never_moves_back() {
        assert_eq!(forward(0, 0.25), 250);
        assert_eq!(forward(250, 0.2), 250);
        assert_eq!(forward(250, 1.5), 1000);
        assert_eq!(forward(400, f64::NAN), 400);
    }

    #[test]
    fn the_bar_shows_the_time_left_once_there_is_an_estimate() {
        let mut job = pb::Job {
            message: "training simulation".into(),
            ..Default::default()
        };
        assert_eq!(progress_message(&job), "training simulation");
        job.seconds_left = Some(125.2);
        assert_eq!(
            progress_message(&job),
            "training simulation (about 2m 05s left)"
        );
        job.seconds_left = Some(3_720.0);
        assert_eq!(
            progress_message(&job),
            "training simulation (about 1h 02m left)"
        );
        job.seconds_left = Some(44.6);
        assert_eq!(
            progress_message(&job),
            "training simulation (about 45s left)"
        );
    }
}
