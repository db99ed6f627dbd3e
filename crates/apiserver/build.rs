//! Compiles `proto/k8s/*.proto` (our own description of the Kubernetes protobuf messages) with
//! protox, pure Rust: no `protoc` needed. Only the encoded `FileDescriptorSet` is written out;
//! `src/protobuf/` loads it into a `prost_reflect::DescriptorPool` and walks messages
//! dynamically, so no Rust code is generated. `proto/gnostic/openapi_v2.proto` (the protobuf
//! form of a Swagger 2.0 document) goes into a second set, loaded by `src/openapi_proto/`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "k8s/runtime.proto",
        "k8s/resource.proto",
        "k8s/intstr.proto",
        "k8s/meta.proto",
        "k8s/core.proto",
        "k8s/events.proto",
        "k8s/coordination.proto",
        "k8s/storage.proto",
        "k8s/autoscaling.proto",
        "k8s/rbac.proto",
        "k8s/authentication.proto",
        "k8s/admissionregistration.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed=proto/{file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let encoded = prost::Message::encode_to_vec(&descriptors);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("k8s_descriptors.bin");
    std::fs::write(out, encoded)?;

    let openapi = "gnostic/openapi_v2.proto";
    println!("cargo:rerun-if-changed=proto/{openapi}");
    let descriptors = protox::compile([openapi], ["proto"])?;
    let encoded = prost::Message::encode_to_vec(&descriptors);
    let out =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("openapi_v2_descriptors.bin");
    std::fs::write(out, encoded)?;
    Ok(())
}
