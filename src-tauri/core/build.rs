//! The web UI (`ui/dist`) is embedded in release builds: rebuild when it
//! is rebuilt.
fn main() {
    println!("cargo:rerun-if-changed=../../ui/dist");
    println!("cargo:rerun-if-changed=../../ui/dist/index.html");
}
