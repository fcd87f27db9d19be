//! Client side of long jobs: submit, follow with a progress bar, print the result.

use super::client::ClientError;
use crate::pb;
use crate::pb::planning_service_client::PlanningServiceClient;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Follows a job until it ends, drawing a progress bar on stderr (hidden when
/// stderr is not a terminal), and returns the final record.
pub async fn follow(
    planning: &mut PlanningServiceClient<Channel>,
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
        bar.set_position((update.progress * 1000.0) as u64);
        bar.set_message(progress_message(&update));
        last = update;
    }
    bar.finish_and_clear();
    Ok(last)
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
