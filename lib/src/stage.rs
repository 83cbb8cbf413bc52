//! The stage interface (postern(7), DESIGN "The tools"): a stage is a
//! library operation first — one job in, zero or more jobs out — with its
//! outside handles (resolver, stores, sockets, the spool) opened once and
//! kept across jobs. A binary is a loop around it ([`run_stream`]); a
//! later single-process runner chains stages in memory the same way,
//! without a fork per stage per message.

use std::io::{BufRead, Write};
use std::time::SystemTime;

use crate::exit::Failure;
use crate::mail::job::{Job, JobReader};

/// One stage of the chain.
pub trait Stage {
    /// Runs the stage on one job at `now`. The jobs returned go to the
    /// next stage (none: the stage settled every recipient itself). An
    /// `Err` means the job could not be handled: the caller must not
    /// report success for it.
    fn process(&mut self, job: Job, now: SystemTime) -> Result<Vec<Job>, Failure>;
}

/// The loop of a job-stream binary: read every job first (a stream cut
/// short is refused whole, never half-handled), run `stage` on each with
/// the time `clock` gives when it starts, and write what comes out.
pub fn run_stream<S: Stage>(
    stage: &mut S,
    input: impl BufRead,
    mut output: impl Write,
    max_message: u64,
    clock: impl Fn() -> SystemTime,
) -> Result<(), Failure> {
    let mut reader = JobReader::new(input, max_message);
    let mut jobs = Vec::new();
    while let Some(job) = reader.next_job()? {
        jobs.push(job);
    }
    for job in jobs {
        for out in stage.process(job, clock())? {
            out.write_to(&mut output).map_err(write_failure)?;
        }
    }
    output.flush().map_err(write_failure)
}

fn write_failure(e: std::io::Error) -> Failure {
    Failure::tempfail(format!(
        "cannot write the job stream to standard output: {e}"
    ))
}
