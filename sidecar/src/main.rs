//! `firetail`: the log-shipping sidecar. The tailing engine and the Firehose sink land in
//! follow-up work; this binary exists so the workspace layout is fixed from the start.

fn main() {
    eprintln!("firetail sidecar: not implemented yet");
    std::process::exit(2);
}
