//! Compiles `proto/spares/v1/*.proto` with protox (pure Rust, no protoc needed)
//! and writes the descriptor set that the reflection service serves.
use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from("proto");
    let mut files: Vec<PathBuf> = std::fs::read_dir(proto_dir.join("spares/v1"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    let fds = protox::compile(&files, [&proto_dir])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("spares_descriptor.bin"), fds.encode_to_vec())?;
    // Every message knows its full name, so the codec can look its request
    // limits up; the codec checks requests and maps decode failures to
    // INVALID_ARGUMENT (see src/api/codec.rs).
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::api::codec::SparesCodec")
        .compile_fds_with_config(fds, config)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
