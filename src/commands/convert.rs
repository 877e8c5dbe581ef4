//! `gpubound convert`: a log from JSON Lines to Parquet or back, through the
//! reader (so the output is validated) and the log writers.

use anyhow::Context;

use crate::cli::{exit, ConvertArgs};
use crate::log::writer::{JsonlLogWriter, LogWriter, ParquetLogWriter};
use crate::log::{self, EventSource, InputFormat, LogInput};
use crate::report::{destination, Destination};
use crate::Error;

pub fn run(args: ConvertArgs) -> anyhow::Result<u8> {
    // converting never enumerates a grid: one too large to enumerate (an
    // audit on sampled hypotheses) converts as any other
    let limits = log::Limits {
        sampled_grid: true,
        ..log::Limits::from(&args.limits)
    };
    let dest = Destination::new(Some(&args.out))?;
    let mut input = log::open_input(&args.input, args.input_format, None, &limits)?;
    let log_path = (args.input != "-").then(|| std::path::Path::new(&args.input));
    let mut inputs = vec![("the log", log_path)];
    inputs.extend(
        input
            .hypothesis_file()
            .map(|p| ("the hypothesis file", Some(p))),
    );
    destination::refuse_overlaps(&[("--out", &dest)], &inputs)?;
    let spec = input
        .model_spec()
        .cloned()
        .ok_or_else(|| Error::input(input.name(), None, "the log has no model to carry over"))?;
    let out_name = args.out.display().to_string();
    let format = match args.output_format {
        InputFormat::Auto => InputFormat::Auto.resolve(&out_name),
        f => f,
    };
    let sink = dest.writer()?;
    let mut writer: Box<dyn LogWriter> = match format {
        InputFormat::Parquet => Box::new(ParquetLogWriter::new(sink, &spec)?),
        _ => Box::new(JsonlLogWriter::new(sink, &spec)?),
    };
    let mut steps = 0usize;
    let mut streams = 0usize;
    while let Some(event) = input.next_event()? {
        match &event {
            log::LogEvent::Stream(_) => streams += 1,
            log::LogEvent::Step(_) => steps += 1,
        }
        writer.write_event(&event)?;
    }
    let empty = writer.finish()?;
    dest.commit().context("writing the converted log")?;
    if !args.quiet {
        let kept = streams - empty;
        eprintln!("gpubound: converted {steps} steps in {kept} streams to {out_name}");
        if empty > 0 {
            eprintln!(
                "gpubound: note: {empty} streams without steps were left out (a Parquet log has one row per step)"
            );
        }
        if let Some(h) = input.hypothesis_file() {
            if !same_folder(&args.input, &args.out) {
                eprintln!(
                    "gpubound: note: the model names the hypothesis file {}, kept as written: it is \
                     found from the converted log's folder, so keep it beside {out_name}",
                    h.display()
                );
            }
        }
    }
    Ok(exit::OK)
}

/// Whether two files are in one folder (a hypothesis file's relative
/// reference then names the same file from both).
fn same_folder(a: &str, b: &std::path::Path) -> bool {
    let folder = |p: &std::path::Path| {
        let parent = p.parent().filter(|p| !p.as_os_str().is_empty());
        std::fs::canonicalize(parent.unwrap_or(std::path::Path::new("."))).ok()
    };
    folder(std::path::Path::new(a)) == folder(b)
}
