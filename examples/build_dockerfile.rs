//! Builds a context directory's Dockerfile into an OCI image layout with the embedding API.
//!
//! ```sh
//! cargo run -p xbuild --example build_dockerfile -- CONTEXT OUT-DIR [XBUILD-ROOT]
//! skopeo inspect oci:OUT-DIR
//! ```
//!
//! Run it as root (RUN steps use namespaces and overlayfs). The base images the Dockerfile
//! names must be in the root's store or pullable (`./scripts/demo` imports `busybox:local`).

use xbuild::{BuildOptions, Builder, OutputSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [context, dest, rest @ ..] = args.as_slice() else {
        return Err("usage: build_dockerfile CONTEXT OUT-DIR [XBUILD-ROOT]".into());
    };
    let root = rest
        .first()
        .map(Into::into)
        .unwrap_or_else(xbuild::default_root);
    let builder = Builder::new(root);
    let mut opts = BuildOptions::new(context);
    opts.outputs.push(OutputSpec::parse(&format!(
        "type=oci,dest={dest},tar=false"
    ))?);
    let result = builder.build(&opts).await?;
    let id = result.image_id.ok_or("the build produced no image")?;
    println!(
        "{id}: {} step(s) ran, {} cached, in {:.2?}",
        result.executed, result.cached, result.timings.total
    );
    Ok(())
}
