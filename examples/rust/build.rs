//! Find libdnngen through the `pkg-config` program (no crates needed).
//!
//! Point PKG_CONFIG_PATH at the directory holding `dnngen.pc`, for an
//! installed library, or at `<build>/meson-uninstalled` for a meson build
//! tree (meson writes `dnngen-uninstalled.pc` there, which pkg-config
//! prefers). PKG_CONFIG selects another pkg-config binary. With
//! DNNGEN_RPATH=1 the library directories are also written into the
//! binaries' run path, so they run without LD_LIBRARY_PATH.

use std::env;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Result<String, String> {
    let prog = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = Command::new(&prog)
        .args(args)
        .arg("dnngen")
        .output()
        .map_err(|e| format!("cannot run `{}`: {}", prog, e))?;
    if !out.status.success() {
        return Err(format!(
            "`{} {} dnngen` failed: {}",
            prog,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    for var in [
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
        "DNNGEN_RPATH",
    ] {
        println!("cargo:rerun-if-env-changed={}", var);
    }
    println!("cargo:rerun-if-changed=build.rs");

    let libs = pkg_config(&["--libs"]).unwrap_or_else(|e| {
        panic!(
            "libdnngen not found: {}\nSet PKG_CONFIG_PATH to the directory \
             holding dnngen.pc (an install's lib/<arch>/pkgconfig, or a \
             meson build tree's meson-uninstalled).",
            e
        )
    });
    let version = pkg_config(&["--modversion"]).unwrap_or_default();
    let cflags = pkg_config(&["--cflags-only-I"]).unwrap_or_default();
    // meson's dnngen-uninstalled.pc names the source tree, whose include/
    // holds the header (its Cflags do not).
    let srcdir = pkg_config(&["--variable=srcdir"]).unwrap_or_default();

    let rpath = env::var("DNNGEN_RPATH").map(|v| v == "1").unwrap_or(false);
    let mut found = false;
    for flag in libs.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={}", dir);
            if rpath {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir);
            }
        } else if let Some(lib) = flag.strip_prefix("-l") {
            found |= lib == "dnngen";
            println!("cargo:rustc-link-lib=dylib={}", lib);
        }
    }
    if !found {
        panic!("`pkg-config --libs dnngen` gave no -ldnngen: {}", libs);
    }
    // The tests compare the loaded library's version with the .pc file's
    // and the `sys` module with the header found through the -I flags.
    println!("cargo:rustc-env=DNNGEN_PC_VERSION={}", version);
    let mut incs: Vec<String> = cflags
        .split_whitespace()
        .filter_map(|f| f.strip_prefix("-I"))
        .map(String::from)
        .collect();
    if !srcdir.is_empty() {
        incs.push(format!("{}/include", srcdir));
    }
    println!("cargo:rustc-env=DNNGEN_INCLUDE_DIRS={}", incs.join(":"));
}
