//! Links Debian's libsbc (`libsbc-dev`) and libspeexdsp (`libspeexdsp-dev`), found with
//! pkg-config (the target-suffixed `PKG_CONFIG_*` variables in `Cross.toml` and `.ci/cross.sh`
//! point it at the target's multiarch libraries when cross-compiling).

fn main() {
    for lib in ["sbc", "speexdsp"] {
        if let Err(e) = pkg_config::Config::new().probe(lib) {
            println!(
                "cargo::error=codriver-callaudio needs lib{lib} and its pkg-config file \
                 (Debian: apt-get install lib{lib}-dev; scripts/setup.sh installs it): {e}"
            );
        }
    }
}
