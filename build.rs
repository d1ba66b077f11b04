// Records the git revision for `umm --version`.
fn main() {
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|r| !r.is_empty());
    let rev = rev
        .or_else(|| std::env::var("UMM_GIT_REV").ok())
        .unwrap_or_else(|| "unknown revision".into());
    println!("cargo:rustc-env=UMM_GIT_REV={rev}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-env-changed=UMM_GIT_REV");
}
