//! Builds a context directory's Dockerfile and renders its progress events its own way: one
//! line per step with a timer, logs indented, from the build's event stream.
//!
//! ```sh
//! cargo run -p xbuild --example progress -- CONTEXT OUT-DIR [XBUILD-ROOT]
//! skopeo inspect oci:OUT-DIR
//! ```
//!
//! Run it as root, with the Dockerfile's base images in the root's store.

use futures_util::StreamExt;
use xbuild::{BuildOptions, Builder, Event, OutputSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [context, dest, rest @ ..] = args.as_slice() else {
        return Err("usage: progress CONTEXT OUT-DIR [XBUILD-ROOT]".into());
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
    let (sink, mut events) = xbuild::event_stream();
    opts.progress = sink.into();

    let build = tokio::spawn(async move { builder.build(&opts).await });
    let mut names = std::collections::HashMap::new();
    while let Some(event) = events.next().await {
        match event {
            Event::Started { vertex, name } => {
                println!("▶ {name}");
                names.insert(vertex, name);
            }
            Event::Cached { name, .. } => println!("✓ {name} (cached)"),
            Event::Waiting { name, .. } => println!("… {name} (another build runs it)"),
            Event::Log { line, .. } => println!("    │ {line}"),
            Event::Done { vertex, seconds } => {
                let name = names.remove(&vertex).unwrap_or_default();
                println!("✓ {name} ({seconds:.2}s)");
            }
            Event::Failed { error, .. } => println!("✗ {error}"),
        }
    }
    let result = build.await??;
    println!(
        "image {}: {} step(s) ran, {} cached",
        result.image_id.ok_or("no image")?,
        result.executed,
        result.cached
    );
    Ok(())
}
