//! Compiles `proto/eve/*.proto` with protox (pure Rust: no `protoc` needed) and prost.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "eve/common.proto",
        "eve/auth.proto",
        "eve/certs.proto",
        "eve/register.proto",
        "eve/uuid.proto",
        "eve/attest.proto",
        "eve/config.proto",
        "eve/info.proto",
        "eve/telemetry.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed=proto/{file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
