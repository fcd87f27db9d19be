//! Progress of a long job over gRPC: the share done only moves forward, and
//! the job reports an estimate of the time left (elapsed x (1 - done) / done)
//! computed from the server's clock, here a manual clock the test steps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use spares::pb;
use spares::service::jobs::{JobKind, JobOutcome};
use std::sync::mpsc;

/// Reads the job over gRPC.
async fn get(c: &mut spares::cli::client::Clients, job_id: &str) -> pb::Job {
    c.planning
        .get_job(pb::GetJobRequest {
            job_id: job_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_moves_forward_with_an_estimate_of_the_time_left() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    // The job reports each share it is sent and acknowledges it, so the test
    // reads the job between reports without any timing assumption.
    let (send, steps) = mpsc::channel::<f64>();
    let (ack, acks) = mpsc::channel::<()>();
    let job = server
        .spares
        .jobs()
        .start(JobKind::Optimize, "test", 7, "{}".into(), move |ctx| {
            for fraction in steps {
                ctx.progress(fraction, "working");
                ack.send(()).unwrap();
            }
            JobOutcome::Done {
                summary: "done".into(),
                result_json: "{}".into(),
            }
        })
        .unwrap();
    let id = job.job_id.clone();
    let step = |fraction: f64, seconds: i64| {
        server.clock.advance_seconds(seconds);
        send.send(fraction).unwrap();
        acks.recv().unwrap();
    };
    // Wait until the worker picked the job up (it stamps started_at).
    while get(&mut c, &id).await.state != pb::JobState::Running as i32 {
        tokio::task::yield_now().await;
    }
    step(0.0, 0);
    let first = get(&mut c, &id).await;
    assert_eq!((first.progress, first.seconds_left), (0.0, None));
    step(0.25, 60);
    let quarter = get(&mut c, &id).await;
    assert_eq!(quarter.progress, 0.25);
    assert_eq!(quarter.seconds_left, Some(180.0));
    // A report below the share already done (a later phase on its own
    // scale) leaves the share where it was; the estimate uses the new time.
    step(0.1, 20);
    let later = get(&mut c, &id).await;
    assert_eq!(later.progress, 0.25);
    assert_eq!(later.seconds_left, Some(240.0));
    step(0.8, 80);
    let most = get(&mut c, &id).await;
    assert_eq!(most.progress, 0.8);
    assert!((most.seconds_left.unwrap() - 40.0).abs() < 1e-9);
    drop(send);
    let done = loop {
        let job = get(&mut c, &id).await;
        if job.state == pb::JobState::Succeeded as i32 {
            break job;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!((done.progress, done.seconds_left), (1.0, Some(0.0)));
    server.stop().await;
}
