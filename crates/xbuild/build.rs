//! With the `remote` feature, compiles the remote worker protocol (`proto/worker.proto`) with
//! protox: no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "remote")]
    {
        println!("cargo:rerun-if-changed=proto/worker.proto");
        let fds = protox::compile(["worker.proto"], ["proto"])?;
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            .compile_fds(fds)?;
    }
    Ok(())
}
