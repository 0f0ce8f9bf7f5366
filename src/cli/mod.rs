//! What the `zre-*` binaries share: flags, output formats, exit codes.
