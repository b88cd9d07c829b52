//! The `nsfilter-lab` command; see `nsfilter-lab help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match nsfilter_lab::cli::main(&args) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("nsfilter-lab: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
