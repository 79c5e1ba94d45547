//! firetail's Datadog log pipeline for the tag rules in the environment: `FIRETAIL_TAG_MAP`
//! and `FIRETAIL_EXTRA_TAGS`, read exactly as the transform Lambda reads them, so the pipeline
//! remaps the tags your stream really carries.
//!
//! ```text
//! cargo run -p firetail-transform --example datadog-pipeline                  # API JSON on stdout
//! cargo run -p firetail-transform --example datadog-pipeline -- terraform     # the Terraform resource
//! cargo run -p firetail-transform --example datadog-pipeline -- --out-dir DIR # pipeline.json + pipeline.tf
//! ```
//!
//! Without those variables it prints the defaults committed in `lambda-transform/datadog/`.
//! Tags that get no attribute remapper are listed on stderr, with the reason.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use firetail_transform::Config;
use firetail_transform::tags::datadog_pipeline::pipeline;

const USAGE: &str = "usage: datadog-pipeline [json | terraform | --out-dir DIR]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("datadog-pipeline: {e}");
            return ExitCode::from(2);
        }
    };
    let p = pipeline(&config.tags);
    for u in &p.unmapped {
        eprintln!("datadog-pipeline: tag {:?} {}", u.tag, u.reason);
    }
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["json"] => std::io::stdout().write_all(p.to_api_json().as_bytes()),
        ["terraform"] => std::io::stdout().write_all(p.to_terraform().as_bytes()),
        ["--out-dir", dir] => {
            let dir = PathBuf::from(dir);
            std::fs::write(dir.join("pipeline.json"), p.to_api_json())
                .and_then(|()| std::fs::write(dir.join("pipeline.tf"), p.to_terraform()))
                .inspect(|()| {
                    eprintln!(
                        "datadog-pipeline: wrote pipeline.json and pipeline.tf in {}",
                        dir.display()
                    )
                })
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("datadog-pipeline: {e}");
            ExitCode::FAILURE
        }
    }
}
