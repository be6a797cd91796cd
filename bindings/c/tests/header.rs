//! The committed `include/ftps.h` is exactly what cbindgen generates from this crate now: a C
//! program never compiles against a header that lies about the library.

#[test]
fn committed_header_is_current() {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let path = format!("{crate_dir}/include/ftps.h");
    if std::env::var_os("FTPS_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/ftps.h is stale: run FTPS_UPDATE_HEADER=1 cargo test -p ftps-capi --test header"
    );
}
