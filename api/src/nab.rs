//! `anomaly nab`: the NAB benchmark run by the product itself (see `anomaly_workers::nab`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use anomaly_workers::detector::{DetectorSpec, ModelSpec};
use anomaly_workers::nab::harness;

#[derive(Debug, Clone, Args)]
pub struct NabArgs {
    /// NAB's data folder (`<category>/<file>.csv`).
    #[arg(long)]
    pub data: PathBuf,
    /// NAB's `combined_windows.json`.
    #[arg(long)]
    pub labels: PathBuf,
    /// NAB's `profiles.json`.
    #[arg(long)]
    pub profiles: PathBuf,
    /// Where to write the results (`<out>/<detector>/<category>/<detector>_<file>.csv`).
    #[arg(long)]
    pub out: PathBuf,
    /// A detector kind with its default options; the product's default detector when absent.
    #[arg(long)]
    pub detector: Option<String>,
    /// A full model spec as JSON (`{"detector": {...}, "alerts": {...}}`), instead of --detector.
    #[arg(long, conflicts_with = "detector")]
    pub spec: Option<String>,
    /// Fails unless a profile scores at least this much, e.g. `--require standard=50`.
    #[arg(long, value_parser = parse_floor)]
    pub require: Vec<(String, f64)>,
}

fn parse_floor(raw: &str) -> Result<(String, f64), String> {
    let (profile, score) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected PROFILE=SCORE, got {raw:?}"))?;
    let score = score
        .parse()
        .map_err(|_| format!("not a number: {score:?}"))?;
    Ok((profile.to_owned(), score))
}

pub fn run(args: &NabArgs) -> anyhow::Result<()> {
    let (name, spec) = match (&args.detector, &args.spec) {
        (Some(name), _) => {
            let detector = DetectorSpec::named(name).with_context(|| {
                format!(
                    "unknown detector {name:?}; known: {}",
                    DetectorSpec::NAMES.join(", ")
                )
            })?;
            (
                name.clone(),
                ModelSpec {
                    detector,
                    ..Default::default()
                },
            )
        }
        (None, Some(json)) => {
            let spec: ModelSpec = serde_json::from_str(json).context("parsing --spec")?;
            ("custom".to_owned(), spec)
        }
        (None, None) => {
            let spec = ModelSpec::default();
            (spec.detector.name().to_owned(), spec)
        }
    };
    let report = harness::run(
        &args.data,
        &args.labels,
        &args.profiles,
        &args.out,
        &name,
        &spec,
    )?;
    println!("detector: {name}  spec: {}", serde_json::to_string(&spec)?);
    println!(
        "{} files, {} points in {:.2} s: {:.0} points/s",
        report.files,
        report.points,
        report.elapsed.as_secs_f64(),
        report.points_per_second()
    );
    println!(
        "detector state per series at the end of its file: mean {} bytes, largest {} bytes",
        report.state_bytes_mean, report.state_bytes_max
    );
    for file in &report.unfitted {
        println!("not fitted (constant probationary prefix), scored 0: {file}");
    }
    println!("{:<22} {:>10} {:>10}", "profile", "score", "threshold");
    for (profile, score) in &report.scores {
        println!(
            "{profile:<22} {:>10.3} {:>10.4}",
            score.normalized, score.threshold
        );
    }
    let mut failed = Vec::new();
    for (profile, floor) in &args.require {
        match report.scores.iter().find(|(p, _)| p == profile) {
            Some((_, score)) if score.normalized >= *floor => {}
            Some((_, score)) => failed.push(format!("{profile} {:.3} < {floor}", score.normalized)),
            None => failed.push(format!("no profile named {profile}")),
        }
    }
    if !failed.is_empty() {
        bail!("below the required NAB scores: {}", failed.join("; "));
    }
    Ok(())
}
