//! zre-keygen: make a CURVE key pair as CZMQ certificate files (`zre-keygen --help`).

use std::process::ExitCode;

use zre::cli::args_tools::KeygenArgs;
use zre::curve;

fn main() -> ExitCode {
    let args: KeygenArgs = zre::cli::args::parse_plain();
    zre::cli::run("zre-keygen", || {
        let mut cert = curve::generate().map_err(anyhow::Error::msg)?;
        if let Some(name) = &args.name {
            cert.metadata.push(("name".into(), name.clone()));
        }
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        cert.save(&args.file, &now)?;
        println!("{}", cert.public);
        Ok(())
    })
}
