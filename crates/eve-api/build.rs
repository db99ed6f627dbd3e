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
    let encoded = prost::Message::encode_to_vec(&descriptors);
    prost_build::Config::new()
        .btree_map(["."])
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;
    // The proto3 JSON form of the configuration (DeviceConfig objects carry it), and of what
    // devices report: the telemetry store keeps info and certificates as JSON, and metrics and
    // flow logs are read out as JSON.
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .btree_map(["."])
        .build(&[
            ".org.lfedge.eve.config",
            ".org.lfedge.eve.common",
            ".org.lfedge.eve.info",
            ".org.lfedge.eve.certs",
            ".org.lfedge.eve.telemetry",
        ])?;
    Ok(())
}
