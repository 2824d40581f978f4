//! Builds an image from a graph written in Rust — no Dockerfile: a base image, one command
//! run in it, and the image config — then writes it as an OCI image layout.
//!
//! ```sh
//! cargo run -p xbuild --example custom_graph -- OUT-DIR [XBUILD-ROOT] [BASE-IMAGE]
//! skopeo inspect oci:OUT-DIR
//! ```
//!
//! Run it as root. BASE-IMAGE (default `busybox:local`, which `./scripts/demo` imports) must be
//! in the root's store and have `/bin/sh`.

use xbuild::llb::{ExecOp, ImageConfig, NetworkMode, Op, Output, SourceOp};
use xbuild::{BuildOptions, Builder, Definition, OutputSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dest, rest @ ..] = args.as_slice() else {
        return Err("usage: custom_graph OUT-DIR [XBUILD-ROOT] [BASE-IMAGE]".into());
    };
    let root = rest
        .first()
        .map(Into::into)
        .unwrap_or_else(xbuild::default_root);
    let base = rest.get(1).map_or("busybox:local", String::as_str);
    let builder = Builder::new(root);
    let image = builder.inspect(base)?;

    let mut def = Definition::new();
    let from = def.add(
        Op::Source(SourceOp::Image {
            reference: base.to_string(),
            digest: image.manifest_digest.clone(),
        }),
        vec![],
    )?;
    let env = image
        .config
        .config
        .as_ref()
        .map(|c| c.env.clone())
        .unwrap_or_default();
    let run = def.add(
        Op::Exec(ExecOp {
            args: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo 'made from a hand-written graph' > /greeting".into(),
            ],
            env: env.clone(),
            cwd: "/".into(),
            user: String::new(),
            network: NetworkMode::None,
            security: Default::default(),
            mounts: vec![],
        }),
        vec![from],
    )?;
    def.add_output(Output {
        name: "default".into(),
        vertex: run,
        config: ImageConfig {
            env,
            cmd: Some(vec!["cat".into(), "/greeting".into()]),
            ..ImageConfig::default()
        },
        history: vec![],
        os: image.config.os.clone(),
        architecture: image.config.architecture.clone(),
        variant: None,
        author: None,
    })?;

    // The graph needs no context: any directory will do.
    let mut opts = BuildOptions::new(".");
    opts.outputs.push(OutputSpec::parse(&format!(
        "type=oci,dest={dest},tar=false"
    ))?);
    let result = builder.build_definition(&def, &opts).await?;
    println!(
        "{}: {} step(s) ran, {} cached",
        result.image_id.ok_or("no image")?,
        result.executed,
        result.cached
    );
    Ok(())
}
