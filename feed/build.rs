//! Records the target triple this crate is built for, as `ROOMREADY_FEED_TARGET`: the target an
//! agent asks its feed for ([`naming::this_target`](src/naming.rs)).

fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=ROOMREADY_FEED_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
